import Hummingbird
import HummingbirdTLS
import NIOSSL
import Prometheus
import X509

#!/bin/sh
# ValidateService: the service must answer on its port within 10 seconds.
port="${SERVICE_PORT:-18080}"
for _ in $(seq 1 50); do
  if python3 -c "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:$port/', timeout=1).read().decode())" 2>/dev/null; then
    exit 0
  fi
  sleep 0.2
done
echo "loopback-service does not answer on 127.0.0.1:$port" >&2
exit 1

"""A tiny HTTP service on a loopback port, the sample app that deployctl starts and stops."""
import http.server
import os
import sys

port = int(sys.argv[1]) if len(sys.argv) > 1 else 18080
version = os.environ.get("SERVICE_VERSION", "1")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"loopback-service version {version}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()

"""A small HTTP server for URL image imports: files served with their
Content-Length, plus the answers an import must refuse (a redirect, a body
without a length, a length no pool holds). Runs in a thread on 127.0.0.1
and records the paths it was asked for."""

import http.server
import threading


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 (http.server's name)
        srv = self.server.owner
        srv.requests.append(self.path)
        path = self.path.split("?", 1)[0]
        if path in srv.files:
            body = srv.files[path]
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif path.endswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", path.rsplit("/", 1)[0] + "/elsewhere.img")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path.endswith("/chunked"):
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"4\r\nabcd\r\n0\r\n\r\n")
        elif path.endswith("/huge"):
            self.send_response(200)
            self.send_header("Content-Length", str(1 << 44))  # 16 TiB
            self.end_headers()
            self.close_connection = True
        else:
            body = b"not here"
            self.send_response(404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)


class ImageServer:
    def __init__(self, port=0):
        self.files = {}
        self.requests = []
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self.httpd.owner = self
        self.httpd.daemon_threads = True
        # a client that hangs up early (an import refusing a length) is expected
        self.httpd.handle_error = lambda request, address: None
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

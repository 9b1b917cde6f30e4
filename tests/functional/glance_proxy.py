# Copyright 2026 cinder-rbd-upload-clone developers
#
#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.

"""A fault-injecting HTTP proxy in front of the real glance-api.

Point Cinder's ``glance_api_servers`` at :attr:`GlanceProxy.url`: every
request is forwarded to the real Glance unless a fault rule matches it,
then the proxy answers with an HTTP error or drops the connection, as a
failing or unreachable Glance would, or forwards the request and drops
Glance's answer, as a connection lost after the request took effect.

The proxy runs in a process of its own (the test process has eventlet
loaded by Cinder; a server thread there would share its hub with the
driver's blocking calls). Tests drive it with :class:`ProxyProcess`.
"""

import http.client
import http.server
import json
import re
import subprocess
import sys
import urllib.parse
import urllib.request

DROP = 'drop'
# Forward the request to Glance, then close the connection without
# passing Glance's answer on: the request took effect, the caller
# cannot know it.
FORWARD_DROP = 'forward-drop'
CONTROL = '/__proxy__'


class GlanceProxy(object):
    """Forward to ``upstream``; ``faults`` maps (method, path regex) rules.

    A rule's action is an HTTP status (answered with a JSON error body)
    or :data:`DROP` (connection closed without an answer). Each rule can
    be limited to its first ``times`` matches.
    """

    def __init__(self, upstream):
        self.upstream = urllib.parse.urlsplit(upstream)
        self.rules = []
        self.hits = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, *args):
                pass

            def _handle(self):
                if self.path.startswith(CONTROL):
                    return self._control()
                action = proxy.match(self.command, self.path)
                if action == DROP:
                    self.close_connection = True
                    self.connection.close()
                    return
                body = self._read_body()
                if action == FORWARD_DROP:
                    proxy.forward(self.command, self.path, self.headers,
                                  body)
                    self.close_connection = True
                    self.connection.close()
                    return
                if action is not None:
                    # What glance-api's WSGI stack answers on errors.
                    self._answer(action, (
                        '%d %s\n\ninjected by the test proxy' % (
                            action, self.responses.get(action, ('',))[0])
                    ).encode(), {'Content-Type': 'text/plain'})
                    return
                status, headers, data = proxy.forward(
                    self.command, self.path, self.headers, body)
                self._answer(status, data, headers)

            def _control(self):
                body = self._read_body()
                if self.command == 'POST':
                    rule = json.loads(body)
                    proxy.fail(rule['method'], rule['path'], rule['action'],
                               rule.get('times'))
                self._answer(200, json.dumps(proxy.hits).encode(),
                             {'Content-Type': 'application/json'})

            def _read_body(self):
                if self.headers.get('Transfer-Encoding') == 'chunked':
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().strip(), 16)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                        if not size:
                            return b''.join(chunks)
                length = int(self.headers.get('Content-Length') or 0)
                return self.rfile.read(length) if length else None

            def _answer(self, status, data, headers):
                self.send_response(status)
                for key, value in headers.items():
                    if key.lower() not in ('content-length', 'connection',
                                           'transfer-encoding'):
                        self.send_header(key, value)
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle
            do_HEAD = _handle

        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0),
                                                      Handler)
        self.server.daemon_threads = True
        self.url = 'http://127.0.0.1:%d' % self.server.server_port

    def fail(self, method, path_regex, action, times=None):
        self.rules.append([method, re.compile(path_regex), action, times])

    def match(self, method, path):
        for rule in self.rules:
            rule_method, regex, action, times = rule
            if rule_method in (method, '*') and regex.search(path):
                if times is not None:
                    if times <= 0:
                        continue
                    rule[3] = times - 1
                self.hits.append((method, path, action))
                return action
        return None

    def forward(self, method, path, headers, body):
        conn = http.client.HTTPConnection(self.upstream.hostname,
                                          self.upstream.port, timeout=300)
        try:
            skip = ('host', 'content-length', 'transfer-encoding',
                    'connection')
            out = {k: v for k, v in headers.items() if k.lower() not in skip}
            if body is not None:
                out['Content-Length'] = str(len(body))
            conn.request(method, path, body=body, headers=out)
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()


class ProxyProcess(object):
    """A :class:`GlanceProxy` in a child process, and its controls."""

    def __init__(self, upstream):
        self.proc = subprocess.Popen(
            [sys.executable, __file__, upstream], stdout=subprocess.PIPE,
            text=True)
        self.url = self.proc.stdout.readline().strip()
        if not self.url:
            raise RuntimeError('the Glance proxy did not start')

    def _call(self, data=None):
        req = urllib.request.Request(
            self.url + CONTROL, data=json.dumps(data).encode()
            if data is not None else None, method='POST' if data else 'GET')
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def fail(self, method, path_regex, action, times=None):
        self._call({'method': method, 'path': path_regex, 'action': action,
                    'times': times})

    @property
    def hits(self):
        return self._call()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


if __name__ == '__main__':
    server = GlanceProxy(sys.argv[1])
    print(server.url, flush=True)
    server.server.serve_forever()

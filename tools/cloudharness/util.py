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

"""Small helpers: steps and failures, commands, files, HTTP, waiting."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import textwrap
import threading
import time

from cloudharness import settings as s

T0 = time.monotonic()


class Fail(Exception):
    """A step failed; `service` names whose log tail to show."""

    def __init__(self, msg, service=None, output=None):
        super(Fail, self).__init__(msg)
        self.service = service
        self.output = output


def say(msg):
    print(msg, flush=True)


WIDTH = 100  # columns of the output, notes wrapped below their step
TITLE = 34


@contextlib.contextmanager
def step(title):
    """Print one line per step: time since start, title, result, duration.

    A result too long for the line goes on, wrapped, below it.
    """
    start = time.monotonic()
    print('[%6.1fs] %-*s' % (start - T0, TITLE, title), end=' ', flush=True)
    note = []
    try:
        yield note
    except BaseException:
        print('FAILED (%.1fs)' % (time.monotonic() - start), flush=True)
        raise
    text = '%s (%.1fs)' % ('; '.join(note) if note else 'ok',
                           time.monotonic() - start)
    print(wrap_after(text, WIDTH - 11 - max(TITLE, len(title))),
          flush=True)


def wrap_after(text, room):
    """What fits of text in room columns, the rest wrapped below it."""
    words, first = text.split(), ''
    while words and len(first) + len(words[0]) + (1 if first else 0) <= room:
        first += (' ' if first else '') + words.pop(0)
    rest = textwrap.wrap(' '.join(words), WIDTH - 11)
    return '\n'.join([first] + [' ' * 11 + r for r in rest])


def base_env():
    """Environment for everything we run.

    Venv first on PATH, our marker set, no OS_* credentials leaking in from
    a sourced openrc.
    """
    drop = ('PYTHONPATH', 'PYTHONHOME', 'VIRTUAL_ENV')
    env = {k: v for k, v in os.environ.items()
           if not k.startswith('OS_') and k not in drop}
    env['PATH'] = s.VBIN + os.pathsep + env.get('PATH', '/usr/bin:/bin')
    env[s.MARK] = s.CLOUD
    env.setdefault('LANG', 'C.UTF-8')
    env.setdefault('LC_ALL', 'C.UTF-8')
    no_proxy = '127.0.0.1,localhost'
    env['no_proxy'] = env['NO_PROXY'] = (
        env.get('no_proxy', '') + ',' + no_proxy).lstrip(',')
    return env


def run(cmd, timeout=120, env=None, input=None, check=True, cwd=None,
        service=None):
    """Run a command to completion in its own session; never hangs."""
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE if input else
                         subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True,
                         env=env or base_env(), cwd=cwd or s.REPO,
                         start_new_session=True)
    try:
        out, err = p.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):
            os.killpg(p.pid, signal.SIGKILL)
        try:
            out, err = p.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            out, err = '', ''
        raise Fail('timed out after %ss: %s' % (timeout, ' '.join(cmd)),
                   service, (out or '') + (err or ''))
    r = subprocess.CompletedProcess(cmd, p.returncode, out, err)
    if check and r.returncode:
        raise Fail('exit %d: %s' % (r.returncode, ' '.join(cmd)), service,
                   (out or '') + (err or ''))
    return r


def write_file(path, text, mode=0o644):
    """Write only if different; return True if the content changed."""
    try:
        with open(path) as f:
            if f.read() == text:
                return False
    except OSError:
        pass
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return True


def read_file(path, default=None):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def touch(path):
    open(path, 'w').close()


def ini(sections):
    """Render {section: {key: value}} (ordered) as an ini file."""
    out = []
    for sec, opts in sections.items():
        out.append('[%s]' % sec)
        out.extend('%s = %s' % (k, v) for k, v in opts.items())
        out.append('')
    return '\n'.join(out)


def port_open(port, host=s.HOST):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def http(method, url, body=None, token=None, timeout=15, headers=None):
    """Return (status, headers, decoded JSON or text); status None if down.

    No proxy, whatever the environment says: everything is on loopback.
    """
    import urllib.error  # here, not above: `tools/cloud kill` stays quick
    import urllib.request
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header('Accept', 'application/json')
    if data is not None:
        req.add_header('Content-Type', 'application/json')
    if token:
        req.add_header('X-Auth-Token', token)
    for key, value in (headers or {}).items():
        req.add_header(key, value)
    try:
        with opener.open(req, timeout=timeout) as r:
            status, headers, raw = r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        status, headers, raw = e.code, e.headers, e.read()
    except (urllib.error.URLError, OSError) as e:
        return None, {}, str(e)
    try:
        return status, headers, json.loads(raw) if raw else None
    except ValueError:
        return status, headers, raw.decode(errors='replace')


def http_ok(url, codes=(200, 300)):
    return lambda: http('GET', url, timeout=5)[0] in codes


def wait_until(pred, timeout, what, service=None, interval=0.3):
    """Poll pred() until truthy; fail fast if `service` died."""
    from cloudharness import processes
    deadline = time.monotonic() + timeout
    while True:
        try:
            res = pred()
        except Fail:
            res = None
        if res:
            return res
        if service and not processes.alive(service):
            raise Fail('%s exited while waiting for %s' % (service, what),
                       service)
        if time.monotonic() > deadline:
            raise Fail('timed out after %ss waiting for %s' % (timeout, what),
                       service)
        time.sleep(interval)


class Background(object):
    """Run a step function in a thread; join() reports it like step()."""

    def __init__(self, title, fn, *args):
        self.title, self.note, self.exc = title, [], None
        self.start = time.monotonic()
        self.end = None

        def target():
            try:
                fn(self.note, *args)
            except BaseException as e:  # re-raised in join()
                self.exc = e
            self.end = time.monotonic()
        self.thread = threading.Thread(target=target, daemon=True)
        self.thread.start()

    def join(self, timeout=600):
        with step(self.title) as n:
            self.thread.join(timeout)
            if self.thread.is_alive():
                raise Fail('%s still running after %ss'
                           % (self.title, timeout))
            if self.exc:
                raise self.exc
            n.extend(self.note)
            n.append('ran %.1fs in background' % (self.end - self.start))

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

"""Processes: start in their own session, record, find, stop, kill, logs.

Every service runs as the leader of its own session; its pid file
(.cloud/pids/<service>.pid) holds the leader's pid and start time, so a
reused pid is never mistaken for the service. Stopping or killing a
service signals every member of its session, never a process by name.
"""

import contextlib
import glob
import os
import signal
import subprocess
import time

from cloudharness import settings as s
from cloudharness import util

STOPPED_PIDS = set()  # everything `down` signalled, to wait for its reaping


def pidfile(name):
    return os.path.join(s.PIDS, name + '.pid')


def logfile(name):
    return os.path.join(s.LOGS, name + '.log')


def _stat(pid):
    """(state, session id, start time) of a pid, or None."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            fields = f.read().rsplit(')', 1)[1].split()
        return fields[0], int(fields[3]), int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def read_pid(name):
    """(pid, start time) recorded for a service, or (None, None)."""
    try:
        with open(pidfile(name)) as f:
            pid, start = f.read().split()[:2]
        return int(pid), int(start)
    except (OSError, ValueError):
        return None, None


def recorded_sids():
    sids = []
    for f in glob.glob(os.path.join(s.PIDS, '*.pid')):
        pid, _ = read_pid(os.path.basename(f)[:-4])
        if pid:
            sids.append(pid)
    return sids


def is_ours(pid, sids=None):
    """Alive (not a zombie) and started by this harness for this tree.

    That is: in the session of a recorded service (every service is a
    session leader and the kernel does not reuse a pid while its session has
    members), or carrying our environment marker (gunicorn/oslo overwrite
    environ with their process titles, hence not the only test).
    """
    st = _stat(pid)
    if not st or st[0] in ('Z', 'X'):
        return False
    if st[1] in (recorded_sids() if sids is None else sids):
        return True
    try:
        with open('/proc/%d/environ' % pid, 'rb') as f:
            env = f.read().split(b'\0')
    except OSError:
        return False
    return ('%s=%s' % (s.MARK, s.CLOUD)).encode() in env


def alive(name):
    """pid of the service's session leader if it still runs, else None."""
    pid, start = read_pid(name)
    if not pid:
        return None
    st = _stat(pid)
    if not st or st[0] in ('Z', 'X') or st[2] != start:
        return None
    return pid


def all_pids():
    return [int(p) for p in os.listdir('/proc') if p.isdigit()]


def session_members(sid):
    out = []
    for pid in all_pids():
        st = _stat(pid)
        if st and st[1] == sid and st[0] not in ('Z', 'X'):
            out.append(pid)
    return out


def marked_pids():
    me, sids = os.getpid(), recorded_sids()
    return [p for p in all_pids() if p != me and is_ours(p, sids)]


def rss_kb(pid):
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def service_rss_mb(name):
    pid = alive(name)
    if not pid:
        return 0.0
    return sum(rss_kb(p) for p in session_members(pid)) / 1024.0


def file_tail(path, lines=30):
    try:
        with open(path, errors='replace') as f:
            return ''.join(f.readlines()[-lines:])
    except OSError:
        return '(no log at %s)\n' % path


def log_tail(name, lines=30):
    return file_tail(logfile(name), lines)


def spawn(name, cmd, env=None, cwd=None):
    """Start a long-running service in its own session, record its pid."""
    port = s.PORTS.get(name)
    if port and util.port_open(port):
        raise util.Fail('port %d is already in use by a process this '
                        'harness did not start; cannot start %s'
                        % (port, name), None)
    os.makedirs(s.PIDS, exist_ok=True)
    os.makedirs(s.LOGS, exist_ok=True)
    with open(logfile(name), 'ab') as log:
        log.write(('\n==== %s starting: %s\n' % (
            time.strftime('%F %T'), ' '.join(cmd))).encode())
        log.flush()
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                             stderr=subprocess.STDOUT,
                             env=env or util.base_env(), cwd=cwd or s.CLOUD,
                             start_new_session=True)
    st = _stat(p.pid)
    with open(pidfile(name), 'w') as f:
        f.write('%d %d\n' % (p.pid, st[2] if st else 0))
    return p.pid


def ensure(name, note, cmd, env=None, cwd=None, restart=False, label=''):
    """Start a service unless it runs (restart: stop it first); note it."""
    if restart and alive(name):
        stop_services([name])
        note.append('config changed: restarted')
    if alive(name):
        note.append(label + 'running')
    else:
        spawn(name, cmd, env=env, cwd=cwd)
        note.append(label + 'started')


def signal_session(sid, sig):
    """Signal every member of a session, its leader first.

    The leader (e.g. cinder-volume's parent) could respawn children.
    """
    members = session_members(sid)
    for pid in sorted(members, key=lambda p: p != sid):
        with contextlib.suppress(OSError):
            os.kill(pid, sig)
    return members


def stop_services(names, timeout=20):
    """SIGTERM every process in each service's session, wait, SIGKILL."""
    sids = {}
    for name in names:
        pid, _ = read_pid(name)
        if pid and session_members(pid):
            sids[name] = pid
            STOPPED_PIDS.update(session_members(pid))
            # a frozen service (tools/cloud kill --signal STOP) must run to
            # handle SIGTERM
            signal_session(pid, signal.SIGTERM)
            signal_session(pid, signal.SIGCONT)
    deadline = time.monotonic() + timeout
    while sids and time.monotonic() < deadline:
        if not any(session_members(sid) for sid in sids.values()):
            break
        time.sleep(0.2)
    killed = []
    for name, sid in sids.items():
        if session_members(sid):
            signal_session(sid, signal.SIGKILL)
            killed.append(name)
    deadline = time.monotonic() + 5
    while killed and time.monotonic() < deadline and \
            any(session_members(sids[n]) for n in killed):
        time.sleep(0.1)
    for name in names:
        with contextlib.suppress(OSError):
            os.unlink(pidfile(name))
    return list(sids), killed


def kill_services(names, sig=signal.SIGKILL, timeout=30):
    """Send sig to every process of each service, as a crash would.

    The pid files stay: `up` sees the services dead and starts them again.
    With SIGKILL, wait until every process is gone. Returns
    {service: [pids]}.
    """
    hit = {}
    for name in names:
        pid = alive(name)
        if pid:
            hit[name] = signal_session(pid, sig)
    if sig == signal.SIGKILL:
        pids = [p for ps in hit.values() for p in ps]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(
                (_stat(p) or ('X',))[0] not in ('Z', 'X') for p in pids):
            time.sleep(0.05)
    return hit


def stop_strays(timeout=10):
    """Stop anything else carrying our marker; return how many.

    For example a pid file lost when `up` died, or epmd started by the
    broker.
    """
    left = marked_pids()
    STOPPED_PIDS.update(left)
    if not left:
        return 0
    for pid in left:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(is_ours(p) for p in left):
        time.sleep(0.2)
    for pid in left:
        if is_ours(pid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    return len(left)


def wait_reaped(timeout=15):
    """Wait (bounded) until init has reaped what we stopped.

    Killed daemons are orphans, reaped with some delay: wait so that `ps`
    right after `down` is clean.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(
            os.path.exists('/proc/%d' % p) for p in STOPPED_PIDS):
        time.sleep(0.2)

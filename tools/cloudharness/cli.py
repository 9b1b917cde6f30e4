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

"""The command line: up, status, down, restart, kill, install.

`kill` imports only what it needs: crash tests time it.
"""

import argparse
import os
import signal

from cloudharness import processes
from cloudharness import settings as s
from cloudharness.util import Fail
from cloudharness.util import say

USAGE = """\
Local cloud harness for cinder_rbd_upload_clone.

Installs (when missing) and runs REAL services on this machine, all bound to
127.0.0.1, with every piece of state under <repo>/.cloud (git-ignored):

  Ceph (1 mon, 1 mgr, 1 OSD), RabbitMQ, MariaDB (Glance's and Cinder's
  databases) -> Keystone -> Glance -> Cinder (api, scheduler, volume with
  backends rbd-clone, rbd-flatten and rbd-generic); with --volume-hosts N
  (2 to 4), N cinder-volume hosts in one Cinder cluster, with etcd

Usage:
  tools/cloud up [--release R] [--osd-store bluestore|memstore]
                 [--driver CLASS|upstream] [--image-quota|--no-image-quota]
                 [--volume-hosts N]
  tools/cloud status
  tools/cloud down
  tools/cloud restart [SERVICE|cinder|glance|ceph|all ...] [up options]
  tools/cloud kill [--signal KILL|STOP|CONT|TERM] SERVICE|cinder|... ...
  tools/cloud install [--release R]  (packages, venv, `pip install -e .`)
  tools/cloud venv [--release R]     (print the venv of the cloud/release)

--release R: the OpenStack release whose Cinder, Glance and Keystone run
(%s; default %s, the newest), installed with
constraints/R.txt into .venv (newest) or .venv-R; a cloud keeps its release
until `tools/cloud down`.
Environment equivalents of the flags: CLOUD_RELEASE, CLOUD_OSD_STORE,
CLOUD_VOLUME_DRIVER, CLOUD_IMAGE_QUOTA=1|0, CLOUD_VOLUME_HOSTS;
CLOUD_IMAGE_SIZE_TOTAL_MIB sets the demo project's image_size_total limit
(MiB, default %d) when the image quota is on. A running cloud keeps its
release, OSD store, image quota and volume hosts unless told otherwise; a
clustered cloud stays clustered.
Volume hosts: cinder-volume@N is host N (cinder-volume@1 = host 1),
cinder-volume all of them, e.g. `tools/cloud kill cinder-volume@2`.
Stdlib only; run it with the system python3.
""" % (', '.join(sorted(s.RELEASES)), s.DEFAULT_RELEASE,
       s.IMAGE_SIZE_TOTAL_MIB)


def cmd_kill(args):
    """Signal every process of the services by their recorded pids."""
    names = s.services(args.services)
    sig = getattr(signal, 'SIG' + args.signal.upper().replace('SIG', ''),
                  None)
    if not isinstance(sig, signal.Signals):
        raise Fail('unknown signal %r' % args.signal)
    hit = processes.kill_services(names, sig)
    for name in names:
        if name in hit:
            say('%s: %s to %d process(es) %s' % (
                name, sig.name, len(hit[name]),
                ' '.join(str(p) for p in hit[name])))
        else:
            say('%s: not running' % name)
    return 0 if hit else 1


def release_option(p):
    p.add_argument('--release', choices=sorted(s.RELEASES),
                   help='OpenStack release of Cinder, Glance and Keystone '
                        '(default: the running cloud\'s, else %s; env '
                        'CLOUD_RELEASE)' % s.DEFAULT_RELEASE)


def cmd_venv(args):
    """Print the venv of the running cloud (or of --release)."""
    from cloudharness import lifecycle
    lifecycle.release(args, running=False)
    say(s.VENV)
    return 0


def up_options(p):
    release_option(p)
    p.add_argument('--osd-store', choices=s.OSD_STORES,
                   help='OSD objectstore: bluestore on a sparse %d GiB file '
                        'in .cloud, or memstore in RAM (%d GiB); default '
                        '%s (env CLOUD_OSD_STORE)' % (
                            s.BLUESTORE_BYTES >> 30, s.MEMSTORE_BYTES >> 30,
                            s.DEFAULT_OSD_STORE))
    p.add_argument('--driver', help='volume_driver class for every '
                   'backend, or "upstream" for %s (default %s; env '
                   'CLOUD_VOLUME_DRIVER)' % (s.UPSTREAM_DRIVER,
                                             s.DEFAULT_DRIVER))
    q = p.add_mutually_exclusive_group()
    q.add_argument('--image-quota', dest='image_quota', action='store_true',
                   default=None,
                   help='Glance quotas from Keystone unified limits; the '
                        'demo project gets image_size_total = '
                        'CLOUD_IMAGE_SIZE_TOTAL_MIB (default %d) (env '
                        'CLOUD_IMAGE_QUOTA=1)' % s.IMAGE_SIZE_TOTAL_MIB)
    q.add_argument('--no-image-quota', dest='image_quota',
                   action='store_false', help='Glance without quotas')
    p.add_argument('--volume-hosts', type=int, metavar='N',
                   help='cinder-volume hosts (1-%d); more than one run as '
                        'one Cinder cluster (%s) with tooz coordination on '
                        'etcd (env CLOUD_VOLUME_HOSTS)' % (
                            s.MAX_VOLUME_HOSTS, s.CLUSTER))


def parser():
    ap = argparse.ArgumentParser(prog='tools/cloud', description=USAGE,
                                 formatter_class=argparse
                                 .RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest='cmd', required=True)
    up_options(sub.add_parser('up', help='install what is missing, start '
                              'what is not running'))
    p = sub.add_parser('restart', help='stop services, then up')
    up_options(p)
    p.add_argument('services', nargs='*',
                   help='services or cinder/glance/ceph/all')
    release_option(sub.add_parser('install', help='only install packages, '
                                  'venv, project'))
    release_option(sub.add_parser('venv', help='print the venv path of the '
                                  'running cloud, or of --release'))
    sub.add_parser('status', help='services, Ceph health and fullness')
    sub.add_parser('down', help='stop everything, remove .cloud')
    p = sub.add_parser('kill', help='signal services by recorded pid, as a '
                       'crash would (`up` starts them again)')
    p.add_argument('--signal', default='KILL',
                   help='KILL (default), STOP (freeze), CONT, TERM')
    p.add_argument('services', nargs='+',
                   help='services or cinder/glance/ceph/all')
    return ap


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        if args.cmd == 'kill':
            return cmd_kill(args)
        if args.cmd == 'venv':
            return cmd_venv(args)
        from cloudharness import lifecycle
        return getattr(lifecycle, 'cmd_' + args.cmd)(args)
    except Fail as e:
        say('\nERROR: %s' % e)
        if e.output:
            say('---- command output (last lines) ----')
            say(''.join(e.output.splitlines(True)[-30:]).rstrip())
        if e.service:
            say('---- last 30 lines of %s ----' % processes.logfile(
                e.service))
            say(processes.log_tail(e.service).rstrip())
            own = s.DAEMON_LOGS.get(e.service)
            if own:
                path = os.path.join(s.LOGS, own)
                say('---- last 30 lines of %s ----' % path)
                say(processes.file_tail(path).rstrip())
        return 1
    except KeyboardInterrupt:
        say('\ninterrupted')
        return 130

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

"""Coordination for a Cinder cluster: Debian's etcd as a plain process.

One member on 127.0.0.1 (client port 2379, peer port 2380), its data in
.cloud/etcd. Cinder reaches it through tooz's etcd3gw driver
(`[coordination] backend_url = etcd3+http://127.0.0.1:2379`, PyPI
package etcd3gw), as its distributed lock manager for active/active
cinder-volume.
"""

import os

from cloudharness import processes
from cloudharness import settings as s
from cloudharness import util

BINARY = '/usr/bin/etcd'


def command():
    client = 'http://%s:%d' % (s.HOST, s.ETCD_PORT)
    peer = 'http://%s:%d' % (s.HOST, s.ETCD_PEER_PORT)
    return [BINARY, '--name', 'cloud', '--data-dir',
            os.path.join(s.ETCD_DIR, 'data'),
            '--listen-client-urls', client,
            '--advertise-client-urls', client,
            '--listen-peer-urls', peer,
            '--initial-advertise-peer-urls', peer,
            '--initial-cluster', 'cloud=' + peer,
            '--initial-cluster-state', 'new',
            # a test cloud: keep the history small
            '--auto-compaction-mode', 'periodic',
            '--auto-compaction-retention', '10m',
            '--log-outputs', 'stderr', '--logger', 'zap']


def start(note):
    if processes.alive('etcd'):
        note.append('running')
        return
    os.makedirs(s.ETCD_DIR, exist_ok=True)
    processes.spawn('etcd', command(), cwd=s.ETCD_DIR)
    note.append('started')


def healthy():
    st, _, js = util.http('GET', s.ETCD_URL + '/health', timeout=3)
    return st == 200 and isinstance(js, dict) and js.get('health') in (
        'true', True)


def wait(note):
    util.wait_until(healthy, 60, 'etcd %s/health' % s.ETCD_URL, 'etcd')
    st, _, js = util.http('GET', s.ETCD_URL + '/version', timeout=3)
    note.append('healthy, etcd %s on %s' % (
        (js or {}).get('etcdserver', '?') if st == 200 else '?',
        s.ETCD_URL))

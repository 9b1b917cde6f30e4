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

"""`tools/cloud status`: every service's state, pid, port and memory, and
the Ceph cluster's health and fullness."""

import contextlib

from cloudharness import ceph
from cloudharness import cinder
from cloudharness import etcd
from cloudharness import keystone
from cloudharness import processes
from cloudharness import settings as s
from cloudharness import util
from cloudharness.util import Fail


def rows():
    """[(service, healthy, pid, port, rss_mb, detail)]."""
    out = []
    cst = ceph.status() if processes.alive('ceph-mon') else {}
    token = project_id = None
    if processes.alive('keystone'):
        with contextlib.suppress(Fail):
            ks = keystone.Keystone()
            token, project_id = ks.token, ks.admin_project_id
    services, pools, by_host = {}, [], {}
    if token and processes.alive('cinder-api'):
        services = cinder.services(token, project_id)
        by_host = cinder.services(token, project_id, by_host=True)
        pools = cinder.pools(token, project_id)
    volume_hosts = {s.volume_service(n): s.volume_host(n)
                    for n in range(1, s.MAX_VOLUME_HOSTS + 1)}
    for name in s.SERVICES:
        pid = processes.alive(name)
        port = s.PORTS.get(name)
        ok, detail = bool(pid), ''
        if pid:
            if port:
                ok = util.port_open(port)
                detail = '' if ok else 'port closed'
            if name == 'ceph-mgr':
                ok = cst.get('mgr', False)
                detail = 'available' if ok else 'not available'
            elif name == 'ceph-osd':
                ok = cst.get('osd_up', 0) >= 1
                detail = 'osd.0 up' if ok else 'osd.0 down'
            elif name == 'ceph-mon' and ok:
                ok = bool(cst)
                detail = 'health %s' % cst.get('health') if ok else \
                    'no answer'
            elif name == 'keystone' and ok:
                ok = token is not None
                detail = '' if ok else 'auth failed'
            elif name == 'glance-api' and ok:
                ok = util.http_ok(s.GLANCE_URL + '/versions')()
            elif name == 'cinder-scheduler':
                states = services.get('cinder-scheduler', [])
                ok = bool(states) and all(st == 'up' for st in states)
                detail = 'service %s' % ','.join(states or ['unknown'])
            elif name == 'etcd':
                ok = etcd.healthy()
                detail = 'healthy' if ok else 'unhealthy'
            elif name in volume_hosts:
                host = volume_hosts[name]
                states = by_host.get(('cinder-volume', host), [])
                ok = (pools == cinder.expected_pools() and
                      len(states) == len(s.BACKENDS) and
                      all(st == 'up' for st in states))
                detail = 'host %s: %d/%d up: %s' % (
                    host, states.count('up'), len(s.BACKENDS),
                    ', '.join(sorted(set(p.split('#')[0] for p in pools)))
                    or '-')
        out.append((name, ok, pid, port, processes.service_rss_mb(name),
                    detail))
    return out


def print_rows(table):
    util.say('%-17s %-5s %8s %6s %9s  %s'
             % ('service', 'state', 'pid', 'port', 'rss', 'detail'))
    for name, ok, pid, port, rss, detail in table:
        util.say('%-17s %-5s %8s %6s %7.0fMB  %s' % (
            name, 'up' if ok else 'DOWN', pid or '-', port or '-', rss,
            detail))
    total = sum(r[4] for r in table)
    util.say('%-17s %-5s %8s %6s %7.0fMB' % ('total', '', '', '', total))
    return all(r[1] for r in table)


def print_cluster():
    """The Cinder cluster of the volume hosts, if the cloud has one."""
    if not s.clustered():
        return True
    try:
        ks = keystone.Keystone()
        found = [c for c in cinder.clusters(ks.token, ks.admin_project_id)
                 if c.get('binary') == 'cinder-volume']
    except Fail as e:
        util.say('cinder cluster %s: no answer (%s)' % (s.CLUSTER, e))
        return False
    util.say('cinder cluster %s (coordination %s): %s' % (
        s.CLUSTER, s.COORDINATION_URL, '; '.join(
            '%s %s, %d/%d hosts up' % (
                c['name'], c['state'], c['num_hosts'] - c['num_down_hosts'],
                c['num_hosts']) for c in found) or 'not listed'))
    return bool(found) and all(c['state'] == 'up' for c in found)


def print_ceph():
    """Health (with any check), PG states, space; False if unhealthy."""
    if not processes.alive('ceph-mon'):
        util.say('ceph: mon not running')
        return False
    try:
        rep = ceph.report()
    except Fail as e:
        util.say('ceph: no report (%s)' % e)
        return False
    util.say('ceph: %s; objectstore %s; %s' % (
        rep['health'], ceph.recorded_store(), ceph.fullness(rep)))
    for name, msg in sorted(rep['checks'].items()):
        util.say('  %s %s: %s' % ('harmless' if name in ceph.HARMLESS_CHECKS
                                  else 'PROBLEM', name, msg))
    util.say('  PGs: %s' % (', '.join('%d %s' % (n, st) for st, n in
                                      sorted(rep['pgs'].items())) or 'none'))
    for pool, st in sorted(rep['pools'].items()):
        util.say('  pool %-8s %s stored, %s more fits' % (
            pool, ceph.gib(st['stored']), ceph.gib(st['max_avail'])))
    util.say('  host disk: %s free (up wants %s)' % (
        ceph.gib(ceph.host_disk_free()), ceph.gib(s.MIN_FREE_BYTES)))
    hint = ceph.full_hint(rep)
    if hint:
        util.say('  ' + hint)
    return not ceph.problems(rep)

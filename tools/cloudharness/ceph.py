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

"""Ceph: one mon, one mgr, one OSD (bluestore on a sparse file by
default, or memstore in RAM), pools `volumes` and `images`, cephx users
`cinder` and `glance`; health and fullness."""

import glob
import json
import os
import shutil
import tempfile
import uuid

from cloudharness import processes
from cloudharness import settings as s
from cloudharness import util
from cloudharness.util import Fail

ADMIN_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            'ceph_admin.py')
STORE_FILE = os.path.join(s.CEPH_DIR, 'osd_store')
ADMIN_KEYRING = os.path.join(s.CLOUD, 'ceph.client.admin.keyring')

# Health checks that say nothing about whether the cloud can work: `up`
# accepts HEALTH_WARN made of these only.
HARMLESS_CHECKS = {
    'POOL_NO_REDUNDANCY', 'MON_DISK_LOW', 'RECENT_CRASH',
    'MGR_MODULE_ERROR', 'MGR_MODULE_DEPENDENCY', 'POOL_APP_NOT_ENABLED',
    'AUTH_INSECURE_GLOBAL_ID_RECLAIM_ALLOWED', 'POOL_TOO_FEW_PGS',
    'POOL_TOO_MANY_PGS', 'TOO_FEW_PGS', 'BLUESTORE_NO_PER_POOL_OMAP',
}


def ceph(*args, timeout=30, check=True, fmt_json=False):
    cmd = ['ceph', '-c', s.CEPH_CONF, '--connect-timeout', '10'] + list(args)
    if fmt_json:
        cmd += ['-f', 'json']
    r = util.run(cmd, timeout=timeout, check=check)
    if fmt_json and r.returncode == 0:
        return json.loads(r.stdout or 'null')
    return r


def admin(ops, timeout=120, service=None):
    """Run ceph_admin.py's ops in Debian's python3; its JSON result."""
    r = util.run(['/usr/bin/python3', ADMIN_SCRIPT, s.CEPH_CONF,
                  json.dumps(ops)], timeout=timeout, service=service)
    return json.loads(r.stdout.strip().splitlines()[-1])


def recorded_store():
    return util.read_file(STORE_FILE)


def conf_text(fsid, store):
    g = {
        'fsid': fsid,
        'mon host': '[v2:%s:%d]' % (s.HOST, s.MON_PORT),
        'mon initial members': 'a',
        'public addr': s.HOST,
        'public network': '127.0.0.0/8',
        'ms bind ipv4': 'true',
        'ms bind ipv6': 'false',
        'auth cluster required': 'cephx',
        'auth service required': 'cephx',
        'auth client required': 'cephx',
        # client.admin/cinder/glance -> .cloud/ceph.client.<id>.keyring
        'keyring': os.path.join(s.CLOUD, 'ceph.$name.keyring'),
        'run dir': os.path.join(s.CEPH_DIR, 'run'),
        'osd pool default size': '1',
        'osd pool default min size': '1',
        'osd pool default pg num': '8',
        'osd pool default pgp num': '8',
        'osd pool default pg autoscale mode': 'off',
        'osd crush chooseleaf type': '0',
        'mon allow pool size one': 'true',
        'mon allow pool delete': 'true',
        'mon warn on pool no redundancy': 'false',
        'mon warn on insecure global id reclaim allowed': 'false',
        'rbd default features': '61',  # layering,exclusive-lock,obj-map,fd,dh
    }
    osd = {
        'osd data': os.path.join(s.CEPH_DIR, 'osd', '$cluster-$id'),
        'keyring': '$osd_data/keyring',
        'log file': os.path.join(s.LOGS, 'ceph-$name.log'),
        'osd objectstore': store,
    }
    if store == 'memstore':
        osd['memstore device bytes'] = str(s.MEMSTORE_BYTES)
    else:
        # mkfs creates $osd_data/block as a sparse file: disk is taken
        # only as data is written. A small cache target: this is a
        # one-node test cluster on a shared machine.
        osd.update({'bluestore block create': 'true',
                    'bluestore block size': str(s.BLUESTORE_BYTES),
                    'osd memory target': str(1 << 30),
                    'bluestore fsck on mount': 'false'})
    return util.ini({
        'global': g,
        'mon': {'mon data': os.path.join(s.CEPH_DIR, 'mon', '$cluster-$id'),
                'keyring': '$mon_data/keyring',
                # one-node test cluster: commit maps at once, not every 1 s
                # (pool create + rbd pool init: 8 s -> 0.4 s)
                'paxos propose interval': '0.05',
                'paxos min wait': '0.01',
                # A dev disk is often < 30 % free: no MON_DISK_LOW
                # warning. Nor does the mon shut itself down on a big
                # shared disk that is 99 % full but has GiBs to spare:
                # `up` checks the free space itself (host_disk_check).
                'mon data avail warn': '1',
                'mon data avail crit': '0',
                'log file': os.path.join(s.LOGS, 'ceph-$name.log')},
        'mgr': {'mgr data': os.path.join(s.CEPH_DIR, 'mgr', '$cluster-$id'),
                'keyring': '$mgr_data/keyring',
                'log file': os.path.join(s.LOGS, 'ceph-$name.log')},
        'osd': osd,
    })


def host_disk_free():
    """Bytes free on the file system that holds the cloud's data."""
    path = s.CLOUD if os.path.isdir(s.CLOUD) else s.REPO
    return shutil.disk_usage(path).free


def host_disk_check():
    """Fail before starting anything if the disk cannot hold the cloud.

    The OSD's block file is sparse: it takes host disk as data is
    written, and an OSD or mon that meets ENOSPC dies with no word on
    the console. A full demo and test run writes about 4 GiB here.
    """
    free = host_disk_free()
    if free < s.MIN_FREE_BYTES:
        raise Fail('only %s free on the disk that holds %s; the cloud '
                   'needs at least %s (OSD data, mon store, logs). Free '
                   'some space (an old `tools/cloud down` leaves nothing '
                   'behind), or lower CLOUD_MIN_FREE_GIB at your own risk'
                   % (gib(free), s.CLOUD, gib(s.MIN_FREE_BYTES)))
    return free


def conf_fsid():
    for line in (util.read_file(s.CEPH_CONF) or '').splitlines():
        if line.strip().startswith('fsid'):
            return line.split('=', 1)[1].strip()
    return None


def write_config(store):
    have = recorded_store()
    if have and have != store and os.path.exists(
            os.path.join(s.OSD_DATA, 'ready')):
        raise Fail('the OSD already uses %s; run `tools/cloud down` '
                   'before switching to %s' % (have, store))
    os.makedirs(os.path.join(s.CEPH_DIR, 'run'), exist_ok=True)
    util.write_file(STORE_FILE, store + '\n')
    util.write_file(s.CEPH_CONF, conf_text(conf_fsid() or str(uuid.uuid4()),
                                           store))


def start_mon(note):
    if not os.path.exists(os.path.join(s.MON_DATA, 'ready')):
        shutil.rmtree(s.MON_DATA, ignore_errors=True)
        os.makedirs(s.MON_DATA)
        tmp = tempfile.mkdtemp(dir=s.CEPH_DIR)
        mon_kr = os.path.join(tmp, 'mon.keyring')
        util.run(['ceph-authtool', '--create-keyring', mon_kr, '--gen-key',
                  '-n', 'mon.', '--cap', 'mon', 'allow *'])
        if not os.path.exists(ADMIN_KEYRING):
            util.run(['ceph-authtool', '--create-keyring', ADMIN_KEYRING,
                      '--gen-key', '-n', 'client.admin',
                      '--cap', 'mon', 'allow *', '--cap', 'osd', 'allow *',
                      '--cap', 'mds', 'allow *', '--cap', 'mgr', 'allow *'])
            os.chmod(ADMIN_KEYRING, 0o600)
        util.run(['ceph-authtool', mon_kr, '--import-keyring',
                  ADMIN_KEYRING])
        monmap = os.path.join(tmp, 'monmap')
        util.run(['monmaptool', '--create', '--addv', 'a',
                  '[v2:%s:%d]' % (s.HOST, s.MON_PORT), '--fsid', conf_fsid(),
                  monmap])
        util.run(['ceph-mon', '-c', s.CEPH_CONF, '--mkfs', '-i', 'a',
                  '--monmap', monmap, '--keyring', mon_kr], timeout=60)
        shutil.rmtree(tmp)
        util.touch(os.path.join(s.MON_DATA, 'ready'))
        note.append('created')
    processes.ensure('ceph-mon', note,
                     ['ceph-mon', '-c', s.CEPH_CONF, '-i', 'a', '-f'])
    util.wait_until(lambda: ceph('mon', 'stat', timeout=20, check=False)
                    .returncode == 0, 60, 'mon quorum', 'ceph-mon')


def start_mgr_osd(note, store):
    """Register mgr.x and osd.0 (one admin call), mkfs, start both."""
    ops = []
    mgr_kr = os.path.join(s.MGR_DATA, 'keyring')
    if not os.path.exists(mgr_kr):
        os.makedirs(s.MGR_DATA, exist_ok=True)
        ops.append(['keyring', 'mgr.x', ['mon', 'allow profile mgr',
                                         'osd', 'allow *', 'mds', 'allow *'],
                    mgr_kr])
    new_osd = not os.path.exists(os.path.join(s.OSD_DATA, 'ready'))
    if new_osd:
        osd_uuid = str(uuid.uuid4())
        secret = util.run(['ceph-authtool', '--gen-print-key']).stdout.strip()
        ops.append(['osd_new', osd_uuid, secret])
    result = admin(ops) if ops else {}
    processes.ensure('ceph-mgr', note,
                     ['ceph-mgr', '-c', s.CEPH_CONF, '-i', 'x', '-f'],
                     label='mgr ')
    if new_osd:
        if result.get('osd_id') != '0':
            raise Fail('expected osd id 0, got %r' % result.get('osd_id'))
        shutil.rmtree(s.OSD_DATA, ignore_errors=True)
        os.makedirs(s.OSD_DATA)
        util.run(['ceph-authtool', '--create-keyring',
                  os.path.join(s.OSD_DATA, 'keyring'), '--name', 'osd.0',
                  '--add-key', secret])
        util.run(['ceph-osd', '-c', s.CEPH_CONF, '-i', '0', '--mkfs',
                  '--osd-uuid', osd_uuid], timeout=300, service='ceph-osd')
        util.touch(os.path.join(s.OSD_DATA, 'ready'))
        note.append('osd.0 created (%s)' % store)
    processes.ensure('ceph-osd', note,
                     ['ceph-osd', '-c', s.CEPH_CONF, '-i', '0', '-f'],
                     label='osd ')


def pools_and_users(note, store):
    """Wait for osd.0, create/init pools, cephx users, check their keys."""
    ops = [['wait_osd_up', 90], ['pools', list(s.POOLS)]]
    for client, caps in s.CEPH_CLIENTS.items():
        kr = os.path.join(s.CLOUD, 'ceph.client.%s.keyring' % client)
        if not os.path.exists(kr):
            ops.append(['keyring', 'client.' + client, caps, kr])
    ops += [['rbd_ls_as', c, p] for c in s.CEPH_CLIENTS for p in s.POOLS]
    if not processes.alive('ceph-osd'):
        raise Fail('ceph-osd is not running' + (
            ' (a memstore OSD cannot come back after a crash: run '
            '`tools/cloud down && tools/cloud up`)'
            if store == 'memstore' else ''), 'ceph-osd')
    try:
        result = admin(ops, timeout=180)
    except Fail as e:
        e.service = e.service or 'ceph-osd'
        raise
    for kr in glob.glob(os.path.join(s.CLOUD, 'ceph.client.*.keyring')):
        os.chmod(kr, 0o600)
    note.append('pools %s%s; users %s' % (
        ', '.join(s.POOLS), ' (created %s)' % ', '.join(result['created'])
        if result.get('created') else '', ', '.join(s.CEPH_CLIENTS)))


def status():
    """{'mgr': bool, 'osd_up': n, 'health': str} from `ceph status`."""
    st = ceph('status', fmt_json=True, check=False, timeout=20)
    if not isinstance(st, dict):
        return {}
    osdmap = st.get('osdmap', {})
    osdmap = osdmap.get('osdmap', osdmap)
    return {'mgr': bool(st.get('mgrmap', {}).get('available')),
            'osd_up': osdmap.get('num_up_osds', 0),
            'health': st.get('health', {}).get('status')}


def report():
    """Health, PG states and space in one admin call, summarised:

    {'health': 'HEALTH_OK', 'checks': {name: message}, 'harmful': [names],
     'pgs': {state: count}, 'used': bytes, 'total': bytes, 'avail': bytes,
     'pools': {name: {'stored': bytes, 'max_avail': bytes}}}
    """
    r = admin([['report']], timeout=60)
    checks = {name: c.get('summary', {}).get('message', '')
              for name, c in r['health'].get('checks', {}).items()}
    pgmap = r['status'].get('pgmap', {})
    stats = r['df'].get('stats', {})
    return {
        'health': r['health'].get('status'),
        'checks': checks,
        'harmful': sorted(set(checks) - HARMLESS_CHECKS),
        'pgs': {p['state_name']: p['count']
                for p in pgmap.get('pgs_by_state', [])},
        'total': stats.get('total_bytes', 0),
        'used': stats.get('total_used_raw_bytes', 0),
        'avail': stats.get('total_avail_bytes', 0),
        'pools': {p['name']: {'stored': p['stats'].get('stored', 0),
                              'max_avail': p['stats'].get('max_avail', 0)}
                  for p in r['df'].get('pools', [])},
    }


def pg_serves(state):
    """Whether PGs in this state serve I/O.

    Any active PG does: snaptrim, scrubbing and the like are background
    work (e.g. active+clean+snaptrim after images go).
    """
    parts = set(state.split('+'))
    return 'active' in parts and not parts & {
        'stale', 'down', 'incomplete', 'inconsistent', 'peering'}


def problems(rep):
    """What is wrong with the cluster, or [] when it can serve."""
    out = []
    if rep['health'] not in ('HEALTH_OK', 'HEALTH_WARN') or rep['harmful']:
        out += ['%s: %s' % (name, rep['checks'][name])
                for name in rep['harmful']] or [rep['health']]
    bad = {st: n for st, n in rep['pgs'].items() if not pg_serves(st)}
    if bad:
        out.append('PGs that cannot serve: %s' % ', '.join(
            '%d %s' % (n, st) for st, n in sorted(bad.items())))
    return out


def wait_healthy(note, timeout=60):
    """Until the cluster is healthy; fail loudly, saying why, if not."""
    last = [None, None]  # report, error

    def healthy():
        try:
            last[0] = report()
        except Fail as e:
            last[1] = e
            raise
        return not problems(last[0])
    try:
        util.wait_until(healthy, timeout, 'a healthy Ceph cluster',
                        'ceph-osd', interval=1)
    except Fail as e:
        if last[0]:
            rep = last[0]
            e.args = ('Ceph is not healthy (%s):\n  %s\n%s' % (
                rep['health'], '\n  '.join(problems(rep)), full_hint(rep)),)
        elif last[1]:
            e.args = ('no report from Ceph: %s' % last[1],)
            e.output = last[1].output
        raise
    rep = last[0]
    note.append('%s; %s of %s used' % (rep['health'], gib(rep['used']),
                                       gib(rep['total'])))


def gib(n):
    return '%.1f GiB' % (n / float(s.GiB))


def fullness(rep):
    pct = 100.0 * rep['used'] / rep['total'] if rep['total'] else 0.0
    return '%s of %s used (%.0f%%), %s available' % (
        gib(rep['used']), gib(rep['total']), pct, gib(rep['avail']))


def full_hint(rep):
    if not any(c in rep['checks'] for c in (
            'OSD_FULL', 'OSD_NEARFULL', 'OSD_BACKFILLFULL', 'POOL_FULL',
            'POOL_NEARFULL')):
        return ''
    return ('The OSD is (nearly) full: %s. Delete volumes and images, or '
            'start over with `tools/cloud down && tools/cloud up` '
            '(bluestore holds %s).' % (fullness(rep),
                                       gib(s.BLUESTORE_BYTES)))

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

"""Cinder: api, scheduler and volume (backends rbd-clone, rbd-flatten,
rbd-generic on the `volumes` pool), MariaDB, volume types, quotas.

With several volume hosts (settings.configure_volume_hosts) every
cinder-volume reads cinder.conf, which then names the cluster and the
coordination backend, plus host-<n>.conf for host n >= 2: its own `host`
and lock path, as a second machine would have."""

import contextlib
import os
import shutil
import time

from cloudharness import broker
from cloudharness import database
from cloudharness import keystone
from cloudharness import processes
from cloudharness import settings as s
from cloudharness import util
from cloudharness.util import Fail

CONF = os.path.join(s.CI_DIR, 'cinder.conf')


def resolve_driver(value):
    value = value or os.environ.get('CLOUD_VOLUME_DRIVER') or \
        s.DEFAULT_DRIVER
    return s.UPSTREAM_DRIVER if value == 'upstream' else value


def host_conf(n):
    return os.path.join(s.CI_DIR, 'host-%d.conf' % n)


def write_host_configs(count):
    """host-<n>.conf of volume hosts 2..count; True if one changed."""
    changed = False
    for n in range(2, count + 1):
        locks = os.path.join(s.CI_DIR, 'locks-%d' % n)
        os.makedirs(locks, exist_ok=True)
        changed = util.write_file(host_conf(n), util.ini({
            'DEFAULT': {'host': s.volume_host(n)},
            'oslo_concurrency': {'lock_path': locks}})) or changed
    return changed


def write_config(driver, volume_hosts=1, cluster=False):
    """cinder.conf (and host-<n>.conf); True if a file changed."""
    for d in ('locks', 'conversion'):
        os.makedirs(os.path.join(s.CI_DIR, d), exist_ok=True)
    privsep_helper = '%s --config-file %s' % (
        os.path.join(s.VBIN, 'privsep-helper'), CONF)
    sections = {
        'DEFAULT': {
            'debug': 'True',
            'use_stderr': 'True',
            'state_path': s.CI_DIR,
            'my_ip': s.HOST,
            'host': 'localhost',
            'transport_url': 'rabbit://%s:%s@%s:%d/' % (
                s.RABBIT_USER, s.RABBIT_PASS, s.HOST, s.RABBIT_PORT),
            'auth_strategy': 'keystone',
            'osapi_volume_listen': s.HOST,
            'osapi_volume_listen_port': str(s.CINDER_PORT),
            'osapi_volume_workers': '1',
            'api_paste_config': os.path.join(s.VENV, 'etc', 'cinder',
                                             'api-paste.ini'),
            'rootwrap_config': os.path.join(s.VENV, 'etc', 'cinder',
                                            'rootwrap.conf'),
            'glance_api_servers': s.GLANCE_URL,
            'enabled_backends': ','.join(s.BACKENDS),
            'default_volume_type': 'clone',
            'image_conversion_dir': os.path.join(s.CI_DIR, 'conversion'),
        },
        'database': {'connection': database.url('cinder')},
        'oslo_concurrency': {'lock_path': os.path.join(s.CI_DIR, 'locks')},
        'oslo_messaging_notifications': {'driver': 'noop'},
        # reconnect every second (default backs off to 30 s): services may
        # start before the broker listens, and survive its restart quickly
        'oslo_messaging_rabbit': {'rabbit_retry_interval': '1',
                                  'rabbit_retry_backoff': '0',
                                  'rabbit_interval_max': '2'},
        'keystone_authtoken': keystone.authtoken_section('cinder'),
        'glance': keystone.password_auth('cinder'),
        'service_user': dict(keystone.password_auth('cinder'),
                             send_service_user_token='True'),
        # cinder-volume runs as root here: start privsep daemons directly
        # (the default goes through sudo and cinder-rootwrap, which sudo's
        # secure_path cannot find in the venv). Cinder's generic upload of
        # non-raw images inspects and converts through privsep.
        'cinder_sys_admin': {'helper_command': privsep_helper},
        'privsep_osbrick': {'helper_command': privsep_helper},
    }
    for be in s.BACKENDS:
        sections[be] = {
            'volume_driver': driver,
            'volume_backend_name': be,
            'rbd_pool': 'volumes',
            'rbd_user': 'cinder',
            'rbd_ceph_conf': s.CEPH_CONF,
            'rbd_secret_uuid': s.RBD_SECRET_UUID,
            'rbd_flatten_volume_from_snapshot': 'False',
            'image_upload_use_cinder_backend': 'False',
            'enable_clone_optimization': str(be != 'rbd-generic'),
            'clone_upload_flatten': s.FLATTEN_POLICY.get(be, 'never'),
            # fail instead of hanging forever on a cephx or network fault
            'rados_connect_timeout': '30',
            # the tests wait for the collector: sweep often
            'clone_upload_gc_interval': '5',
        }
    if cluster:
        # Active/active: every cinder-volume of the cluster serves its
        # backends; Cinder's distributed locks live in etcd.
        sections['DEFAULT']['cluster'] = s.CLUSTER
        sections['coordination'] = {'backend_url': s.COORDINATION_URL}
        for be in s.BACKENDS:
            # Another host's collector takes over a dead host's uploads
            # after this many seconds without heartbeat (60 s): short, so
            # that the tests see it.
            sections[be]['clone_upload_gc_grace'] = str(s.CLUSTER_GC_GRACE)
    changed = write_host_configs(volume_hosts)
    return util.write_file(CONF, util.ini(sections)) or changed


def cmd(binary, host=1):
    extra = ['--config-file', host_conf(host)] if host > 1 else []
    return [os.path.join(s.VBIN, binary), '--config-file', CONF] + extra


def check_driver_importable(driver):
    module = driver.rsplit('.', 1)[0]
    r = util.run([s.VPY, '-c', 'import importlib.util, sys; sys.exit(0 if '
                  'importlib.util.find_spec(%r) else 1)' % module],
                 check=False, timeout=60)
    if r.returncode:
        raise Fail('volume driver module %s is not importable in %s (is '
                   'setup.cfg there and installed?). Use `--driver upstream` '
                   'to run with %s meanwhile.' % (module, s.VENV,
                                                  s.UPSTREAM_DRIVER))


def db(note):
    if os.path.exists(os.path.join(s.CI_DIR, 'db-synced')):
        note.append('already synced')
        return
    database.server_db(note, 'cinder', lambda: util.run(
        cmd('cinder-manage') + ['db', 'sync'], timeout=300))
    util.touch(os.path.join(s.CI_DIR, 'db-synced'))


def start(note, svc):
    processes.ensure(svc, note, cmd(svc))


def api_wait(note):
    util.wait_until(util.http_ok(s.CINDER_URL + '/'), 90, 'cinder-api',
                    'cinder-api')


def start_volume(note, host=1):
    svc = s.volume_service(host)
    if processes.alive(svc):
        note.append('running')
    else:
        # start-up race: volume must find the scheduler's fanout queue
        util.wait_until(lambda: broker.has_queue('cinder-scheduler_fanout'),
                        90, 'queue cinder-scheduler_fanout',
                        'cinder-scheduler', interval=0.5)
        command, how = etc_ceph_namespace(cmd('cinder-volume', host))
        processes.spawn(svc, command)
        note.append('started' + how)


def etc_ceph_namespace(command):
    """Run a command with .cloud/etc-ceph bind-mounted on /etc/ceph.

    In a private mount namespace: nothing changes for the rest of the
    machine.

    os-brick's RBD connector (used by RBDDriver.copy_volume_to_image for raw
    images, i.e. the streaming upload path) reads the key from the fixed path
    /etc/ceph/<cluster>.client.<rbd_user>.keyring; cinder deliberately no
    longer reads rbd_keyring_conf from cinder.conf (OSSN-0085).
    """
    os.makedirs(s.ETC_CEPH, exist_ok=True)
    for name in ('ceph.conf', 'ceph.client.cinder.keyring'):
        dst = os.path.join(s.ETC_CEPH, name)
        with contextlib.suppress(OSError):
            os.unlink(dst)
        os.symlink(os.path.join(s.CLOUD, name), dst)
    probe = util.run(['unshare', '--mount', '--propagation', 'private',
                      'true'], check=False, timeout=10) \
        if shutil.which('unshare') else None
    if not os.path.isdir('/etc/ceph') or not probe or probe.returncode:
        return command, (' WITHOUT /etc/ceph overlay (no mount namespace): '
                         'raw uploads through os-brick need '
                         '/etc/ceph/ceph.client.cinder.keyring')
    return (['unshare', '--mount', '--propagation', 'private', '--', 'sh',
             '-c', 'mount --bind "$0" /etc/ceph && exec "$@"', s.ETC_CEPH]
            + command, ' (own mount ns: /etc/ceph = .cloud/etc-ceph)')


def pools(token, project_id):
    st, _, js = util.http('GET', '%s/v3/%s/scheduler-stats/get_pools'
                          % (s.CINDER_URL, project_id), token=token,
                          timeout=10)
    if st != 200:
        return []
    return sorted(p['name'] for p in js.get('pools', []))


def services(token, project_id, by_host=False):
    """{binary: [state, ...]} from os-services.

    by_host: {(binary, host without @backend): [state, ...]}.
    """
    out = {}
    st, _, js = util.http('GET', '%s/v3/%s/os-services' % (
        s.CINDER_URL, project_id), token=token, timeout=10)
    if st == 200:
        for svc in js['services']:
            key = ((svc['binary'], svc['host'].split('@')[0]) if by_host
                   else svc['binary'])
            out.setdefault(key, []).append(svc['state'])
    return out


def clusters(token, project_id):
    """Cinder's clusters (API 3.7): [{name, state, num_hosts, ...}]."""
    st, _, js = util.http('GET', '%s/v3/%s/clusters/detail' % (
        s.CINDER_URL, project_id), token=token, timeout=10,
        headers={'OpenStack-API-Version': 'volume 3.7'})
    return js.get('clusters', []) if st == 200 else []


def expected_pools():
    """Pools the scheduler lists: a cluster's backends are its own."""
    owner = s.CLUSTER if s.clustered() else 'localhost'
    return sorted('%s@%s#%s' % (owner, b, b) for b in s.BACKENDS)


def wait_pools(note, ks):
    util.wait_until(lambda: pools(ks.token, ks.admin_project_id) ==
                    expected_pools(), 180, 'cinder get-pools to list %s'
                    % ', '.join(expected_pools()), 'cinder-volume',
                    interval=1)
    note.append(', '.join(s.BACKENDS))


def wait_volume_hosts(note, ks, count):
    """Every backend of volume hosts 1..count is up in os-services."""
    want = [s.volume_host(n) for n in range(1, count + 1)]

    def up():
        states = services(ks.token, ks.admin_project_id, by_host=True)
        return all(states.get(('cinder-volume', h), []).count('up') ==
                   len(s.BACKENDS) for h in want)
    util.wait_until(up, 180, 'cinder-volume services of %s up' %
                    ', '.join(want), 'cinder-volume', interval=1)
    found = clusters(ks.token, ks.admin_project_id)
    note.append('hosts %s; %s' % (', '.join(want), ', '.join(
        '%s %s/%s hosts up' % (c['name'], c['num_hosts'] -
                               c['num_down_hosts'], c['num_hosts'])
        for c in found if c.get('binary') == 'cinder-volume') or
        'no cluster listed'))


def volume_types(note, ks):
    base = '%s/v3/%s/types' % (s.CINDER_URL, ks.admin_project_id)
    for attempt in range(4):
        st, _, js = util.http('GET', base + '?is_public=None',
                              token=ks.token)
        if st != 200:
            raise Fail('listing volume types: %s %s' % (st, js),
                       'cinder-api')
        have = {t['name'] for t in js['volume_types']}
        todo = [n for n in s.VOLUME_TYPES if n not in have]
        if not todo:
            break
        for name in todo:
            st, _, js = util.http('POST', base, {'volume_type': {
                'name': name, 'os-volume-type-access:is_public': True,
                'description': 'backend ' + s.VOLUME_TYPES[name],
                'extra_specs': {
                    'volume_backend_name': s.VOLUME_TYPES[name]}}},
                token=ks.token)
            if st == 200:
                note.append('created ' + name)
            elif attempt == 3:
                raise Fail('creating volume type %s: %s %s' % (name, st, js),
                           'cinder-api')
            else:
                time.sleep(1)  # e.g. a transient DB error: retry
    if not note:
        note.append('present')


def quotas(note, ks):
    """No gigabytes and no volumes quota.

    tools/bench makes a 1 TiB thin volume; 16 uploads at once need 16
    volumes (and the tests more). The defaults (1000 GB, 10 volumes)
    live in the database's default quota class, which overrides
    cinder.conf.
    """
    url = '%s/v3/%s/os-quota-class-sets/default' % (s.CINDER_URL,
                                                    ks.admin_project_id)
    st, _, js = util.http('PUT', url, {'quota_class_set': {
        'gigabytes': -1, 'volumes': -1}}, token=ks.token)
    if st != 200:
        raise Fail('setting the default gigabytes quota: %s %s' % (st, js),
                   'cinder-api')
    note.append('gigabytes and volumes unlimited')

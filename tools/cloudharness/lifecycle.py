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

"""What the commands do: install, up, status, down, restart."""

import os
import shutil
import time

from cloudharness import broker
from cloudharness import ceph
from cloudharness import cinder
from cloudharness import clients
from cloudharness import database
from cloudharness import etcd
from cloudharness import glance
from cloudharness import health
from cloudharness import install
from cloudharness import keystone
from cloudharness import processes
from cloudharness import settings as s
from cloudharness import util
from cloudharness.util import Fail
from cloudharness.util import say
from cloudharness.util import step

QUOTA_FILE = os.path.join(s.CLOUD, 'image-quota')


def osd_store(args):
    existing = ceph.recorded_store()
    # an existing cluster keeps its objectstore unless one is asked for
    store = (args.osd_store or os.environ.get('CLOUD_OSD_STORE') or existing
             or s.DEFAULT_OSD_STORE)
    if store not in s.OSD_STORES:
        raise Fail('unknown --osd-store %r' % store)
    return store, existing


def cloud_release():
    """The release of the cloud in .cloud; None when there is none."""
    recorded = s.recorded_release()
    if recorded:
        return recorded
    # A cloud made before releases were recorded ran the newest.
    if any(os.path.isdir(d) for d in (s.KS_DIR, s.GL_DIR, s.CI_DIR)):
        return s.DEFAULT_RELEASE
    return None


def release(args, running=True):
    """Choose the release (--release, CLOUD_RELEASE, the cloud's, newest).

    :param running: for `up`: a cloud keeps its release (its databases
        are that release's); another one needs `tools/cloud down` first.
    """
    current = cloud_release()
    rel = (getattr(args, 'release', None) or
           os.environ.get('CLOUD_RELEASE') or current or s.DEFAULT_RELEASE)
    s.use_release(rel)
    if running and current and rel != current:
        raise Fail('the cloud in %s runs %s; `tools/cloud down` first to '
                   'run %s' % (s.CLOUD, current, rel))
    return rel


def release_line():
    """'2025.1 (cinder 26.3.0, glance 30.2.0, keystone 27.1.0; .venv-...)'"""
    return '%s (%s; %s)' % (s.RELEASE, ', '.join(
        '%s %s' % (name, database.dist_version(name))
        for name in ('cinder', 'glance', 'keystone')),
        os.path.relpath(s.VENV, s.REPO))


def image_quota(args):
    """MiB of the demo project's image_size_total, or None (quota off)."""
    recorded = util.read_file(QUOTA_FILE)
    on = args.image_quota
    if on is None and os.environ.get('CLOUD_IMAGE_QUOTA'):
        on = os.environ['CLOUD_IMAGE_QUOTA'] not in ('0', 'false', 'no', '')
    if on is None:
        on = recorded is not None
    if not on:
        return None
    mib = os.environ.get('CLOUD_IMAGE_SIZE_TOTAL_MIB') or recorded or \
        s.IMAGE_SIZE_TOTAL_MIB
    try:
        return int(mib)
    except ValueError:
        raise Fail('CLOUD_IMAGE_SIZE_TOTAL_MIB=%r is not a number' % mib)


def volume_hosts(args):
    """(number of cinder-volume hosts, clustered) for this `up`."""
    count = getattr(args, 'volume_hosts', None) or os.environ.get(
        'CLOUD_VOLUME_HOSTS') or (s.recorded_volume_hosts()
                                  if os.path.exists(s.VOLUME_HOSTS_FILE)
                                  else 1)
    try:
        count = int(count)
    except ValueError:
        raise Fail('CLOUD_VOLUME_HOSTS=%r is not a number' % count)
    if not 1 <= count <= s.MAX_VOLUME_HOSTS:
        raise Fail('--volume-hosts must be 1 to %d, not %d' % (
            s.MAX_VOLUME_HOSTS, count))
    return count, count > 1 or s.clustered()


def cmd_install(args):
    release(args, running=False)
    install.install_all(cinder.resolve_driver(getattr(args, 'driver', None)))
    return 0


def cmd_up(args):
    release(args)
    store, existing = osd_store(args)
    driver = cinder.resolve_driver(args.driver)
    if (existing == 'memstore' and not processes.alive('ceph-osd') and
            os.path.exists(os.path.join(s.OSD_DATA, 'ready'))):
        # A memstore OSD keeps its data in RAM: once its process is gone
        # (machine rebooted, OSD killed) the pools are empty shells and the
        # databases name volumes and images that no longer exist. Start
        # over rather than serve a cluster with inactive PGs.
        say('cloud up: the memstore OSD of %s is gone with its data; '
            'starting a fresh cloud' % s.CLOUD)
        cmd_down(args)
        existing = None
    quota_mib = image_quota(args)
    hosts, cluster = volume_hosts(args)
    s.configure_volume_hosts(hosts, cluster)
    say('cloud up: %s\n  release %s, osd store %s, driver %s%s%s' % (
        s.REPO, s.RELEASE, store, driver, ', image quota %d MiB' % quota_mib
        if quota_mib else '', ', %d cinder-volume host(s)%s' % (
            hosts, ' in cluster %s, coordination %s' % (
                s.CLUSTER, s.COORDINATION_URL) if cluster else '')))
    ceph.host_disk_check()
    install.install_all(driver)
    util.write_file(s.RELEASE_FILE, s.RELEASE + '\n')
    cinder.check_driver_importable(driver)  # before cinder.conf names it

    # Configs first, then the slow independent work in parallel: the broker
    # boots and the three DB set-ups run while Ceph comes up.
    with step('write configs') as n:
        ceph.write_config(store)
        limits = keystone.glance_endpoint_id() if quota_mib else None
        changed = {'keystone': keystone.write_config(),
                   'glance': glance.write_config(limits),
                   'cinder': cinder.write_config(driver, hosts, cluster)}
        util.write_file(s.VOLUME_HOSTS_FILE, '%d\n' % hosts)
        if cluster:
            util.write_file(s.CLUSTERED_FILE, s.CLUSTER + '\n')
        if quota_mib:
            util.write_file(QUOTA_FILE, '%d\n' % quota_mib)
        elif os.path.exists(QUOTA_FILE):
            os.unlink(QUOTA_FILE)
        n.append('changed: ' + (', '.join(k for k, v in changed.items()
                                          if v) or 'none'))
    # Then everything in dependency order, starting each service as soon as
    # what it needs is there and waiting for it only when something needs it.
    with step('rabbitmq start') as n:
        broker.start(n)
    with step('mariadb start') as n:
        database.start(n)
    jobs = {'keystone': util.Background('keystone db', keystone.db),
            'glance': util.Background('glance db', glance.db),
            'cinder': util.Background('cinder db', cinder.db)}
    if cluster:
        with step('etcd start (:%d)' % s.ETCD_PORT) as n:
            etcd.start(n)
    with step('ceph-mon') as n:
        ceph.start_mon(n)
    with step('ceph-mgr + ceph-osd') as n:
        ceph.start_mgr_osd(n, store)
    with step('ceph osd up, pools, cephx users') as n:
        ceph.pools_and_users(n, store)
    if changed['cinder'] and any(processes.alive(x)
                                 for x in s.ALIASES['cinder']):
        with step('cinder.conf changed: stop cinder'):
            processes.stop_services(s.ALIASES['cinder'])
    gone = [v for v in s.ALIASES['cinder-volume']
            if v not in [s.volume_service(n) for n in range(1, hosts + 1)]]
    if gone:
        with step('stop volume hosts beyond %d' % hosts) as n:
            n.append(', '.join(processes.stop_services(gone)[0]) or
                     'none running')
            n.append('Cinder lists them up for service_down_time (60 s) '
                     'more, then down; the cluster keeps them')
        s.configure_volume_hosts(hosts, cluster)
    # The critical path is broker -> scheduler -> volume -> first stats
    # report. The scheduler imports for ~6 s and retries the broker every
    # second ([oslo_messaging_rabbit] in cinder.conf), so start it first.
    jobs['cinder'].join()
    with step('cinder-scheduler start') as n:
        cinder.start(n, 'cinder-scheduler')
    # glance-api reads the cluster fsid at start: needs client.glance
    jobs['glance'].join()
    with step('glance-api start (gunicorn :%d)' % s.GLANCE_PORT) as n:
        glance.start(n, changed['glance'])
    jobs['keystone'].join()
    with step('keystone start (gunicorn :%d)' % s.KEYSTONE_PORT) as n:
        keystone.start(n, changed['keystone'])
    with step('rabbitmq ready') as n:
        broker.wait(n)
    if cluster:
        with step('etcd ready') as n:
            etcd.wait(n)
    for host in range(1, hosts + 1):
        with step('%s (after scheduler queue)' % s.volume_service(host)) \
                as n:
            cinder.start_volume(n, host)
    with step('cinder-api start') as n:
        cinder.start(n, 'cinder-api')
    with step('keystone ready') as n:
        keystone.wait(n)
    with step('keystone projects/users/catalog') as n:
        keystone.resources(n)
    if quota_mib:
        with step('keystone limits for glance') as n:
            endpoint = keystone.image_limits(n, quota_mib)
        if glance.write_config(endpoint):
            with step('glance-api restart (keystone limits)') as n:
                glance.start(n, True)
    with step('glance-api ready') as n:
        glance.wait(n)
    if quota_mib:
        with step('glance quota (GET /v2/info/usage)') as n:
            check_image_quota(n, quota_mib)
    with step('cinder-api ready') as n:
        cinder.api_wait(n)
    ks = keystone.Keystone()
    with step('cinder pools (get-pools)') as n:
        cinder.wait_pools(n, ks)
    if cluster:
        with step('cinder cluster (service-list)') as n:
            cinder.wait_volume_hosts(n, ks, hosts)
    with step('volume types') as n:
        cinder.volume_types(n, ks)
    with step('quotas') as n:
        cinder.quotas(n, ks)
    with step('ceph-mgr available') as n:
        util.wait_until(lambda: ceph.status().get('mgr'), 90,
                        'mgr available', 'ceph-mgr', interval=1)
    with step('ceph healthy') as n:
        ceph.wait_healthy(n)
    clients.write_env_files()
    say('[%6.1fs] release %s' % (time.monotonic() - util.T0, release_line()))
    say('[%6.1fs] done. For the CLIs: source %s\n%11s(demo user) or '
        '%s (admin)' % (time.monotonic() - util.T0,
                        os.path.join(s.CLOUD, 'openrc'), '',
                        os.path.join(s.CLOUD, 'admin-openrc')))
    if not health.print_rows(health.rows()):
        raise Fail('some service is not healthy (see table above)')
    return 0


def check_image_quota(note, mib):
    token, _ = keystone.get_token('demo', s.PASSWORDS['demo'], 'demo')
    usage = glance.usage(token)
    limit = usage.get('image_size_total', {}).get('limit')
    if limit != mib:
        raise Fail('glance reports image_size_total limit %r for the demo '
                   'project, not %d MiB: %s' % (limit, mib, usage),
                   'glance-api')
    note.append('demo: image_size_total %s of %d MiB used' % (
        usage['image_size_total'].get('usage'), mib))


def cmd_status(args):
    if not os.path.isdir(s.CLOUD):
        say('no %s: nothing is running' % s.CLOUD)
        return 1
    release(args, running=False)
    say('release %s' % release_line())
    ok = health.print_rows(health.rows())
    ok = health.print_ceph() and ok
    ok = health.print_cluster() and ok
    quota = util.read_file(QUOTA_FILE)
    if quota:
        say('glance: unified limits on; demo image_size_total %s MiB' % quota)
    return 0 if ok else 1


def cmd_down(args):
    start = time.monotonic()
    had_rabbit = processes.read_pid('rabbitmq')[0] is not None
    for group in s.STOP_GROUPS:
        timeout = 10 if group[0].startswith('ceph-osd') else 25
        stopped, killed = processes.stop_services(group, timeout=timeout)
        if stopped:
            say('[%6.1fs] stopped %s%s' % (
                time.monotonic() - start, ', '.join(stopped),
                ' (SIGKILL: %s)' % ', '.join(killed) if killed else ''))
    strays = processes.stop_strays()
    if strays:
        say('[%6.1fs] stopped %d stray process(es) of this harness'
            % (time.monotonic() - start, strays))
    if had_rabbit:
        broker.stop_epmd()
    time.sleep(0.2)
    left = processes.marked_pids()
    if left:
        raise Fail('processes still alive after SIGKILL: %s' % left)
    processes.wait_reaped()
    shutil.rmtree(s.CLOUD, ignore_errors=True)
    say('[%6.1fs] removed %s' % (time.monotonic() - start, s.CLOUD))
    return 0


def cmd_restart(args):
    names = s.services(args.services or ['all'])
    for group in s.STOP_GROUPS:
        sel = [x for x in group if x in names]
        if sel:
            stopped, _ = processes.stop_services(sel)
            say('stopped %s' % (', '.join(stopped) or 'nothing'))
    return cmd_up(args)

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

"""List RBD images, snapshots and trash entries that nothing owns.

Looks at the volumes and images pools of a Ceph cluster and at what Cinder
and Glance know (admin credentials), and prints every RBD image, snapshot
or trash entry that no Cinder volume, Cinder snapshot or Glance image owns,
one line each with its kind:

  kind                       what is owned, and by what
  orphan-image               images/<id>, images/<id>@snap: Glance image <id>
                             exists (an orphan clone is one of these)
  orphan-volume              volumes/volume-<id>: Cinder volume <id> exists
  deleted-volume-unneeded    volumes/volume-<id>.deleted: kept by the driver
                             while one of its snapshots still has a clone
                             (upstream's RBD driver leaves such volumes with
                             childless <clone>.clone_snap snapshots)
  orphan-snapshot            volumes/<vol>@snapshot-<id>: Cinder snapshot
                             <id> exists
  orphan-upload-snapshot     volumes/<vol>@upload-<img>.clone_snap: it has a
                             clone and Glance image <img> exists, or the
                             upload is in flight (its journal record's
                             owner beat within the last IN_FLIGHT_SECONDS)
  orphan-clone-snapshot      volumes/<vol>@<x>.clone_snap: it has a clone
  unknown-snapshot           any other snapshot
  trash                      <pool>/trash/<id> (<name>): an RBD trash entry
                             is kept while it has clones or its deferred
                             deletion is not due yet

Exit status: 0 when nothing leaks, 1 when something does, 2 on errors.

This module imports neither Cinder nor the Ceph bindings until it runs, so
``tools/leak-check`` can load it from a checkout.
"""

import json
import os
import shlex
import sys
import time

EXIT_CLEAN, EXIT_LEAKS, EXIT_ERROR = 0, 1, 2
# An upload whose journal record's owner beat this recently (the owner
# beats every 60 s) is in flight: its snapshot is not a leak yet. A record
# of a dead owner does not protect anything (the collector settles it).
IN_FLIGHT_SECONDS = 180
# How often --settle looks again.
SETTLE_INTERVAL = 5


def add_arguments(parser, ceph_conf=None, rados_id=None, openrc=None,
                  volumes_pool=None, images_pool=None):
    """The leak check's flags, on an argparse parser or sub-parser.

    A default of None is filled in by :func:`run` (from a backend section
    of cinder.conf, else the built-in default); tools/leak-check passes
    the local cloud's.
    """
    parser.add_argument('--ceph-conf', default=ceph_conf,
                        help='Ceph configuration file (default: the '
                             "backend's rbd_ceph_conf, else "
                             '/etc/ceph/ceph.conf)')
    parser.add_argument('--id', default=rados_id, help='cephx user (default: '
                        "the backend's rbd_user, else admin)")
    parser.add_argument('--openrc', default=openrc,
                        help='file of exported OS_* variables of an admin; '
                             'default: the OS_* environment variables')
    parser.add_argument('--volumes-pool', default=volumes_pool,
                        help="default: the backend's rbd_pool, else volumes")
    parser.add_argument('--images-pool', default=images_pool,
                        help='default: images')
    parser.add_argument('--settle', type=int, default=0, metavar='SECONDS',
                        help='while leaks remain, look again every %d s for '
                             'up to SECONDS (a cloud that has just been '
                             "busy: the collector's next sweep removes what "
                             "upstream's driver leaves); report what is "
                             'still there' % SETTLE_INTERVAL)
    parser.add_argument('--json', action='store_true',
                        help='print {"leaks": [...], "in_flight": [...], '
                             '"rbd_images": N}')


def read_openrc(path):
    """The variables an openrc file exports."""
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith('export ') and '=' in line:
                key, value = line[len('export '):].split('=', 1)
                env[key] = shlex.split(value)[0] if value else ''
    return env


def credentials(openrc=None, environ=None):
    """OS_* variables from ``openrc``, else from the environment."""
    if openrc:
        return read_openrc(openrc)
    environ = os.environ if environ is None else environ
    return {k: v for k, v in environ.items() if k.startswith('OS_')}


def session_for(env):
    """A keystoneauth session for the OS_* variables of ``env``."""
    from keystoneauth1 import identity
    from keystoneauth1 import session

    missing = [k for k in ('OS_AUTH_URL', 'OS_USERNAME', 'OS_PASSWORD',
                           'OS_PROJECT_NAME') if not env.get(k)]
    if missing:
        raise ValueError('no admin credentials: %s unset (pass --openrc or '
                         'source an admin openrc)' % ', '.join(missing))
    return session.Session(auth=identity.Password(
        auth_url=env['OS_AUTH_URL'], username=env['OS_USERNAME'],
        password=env['OS_PASSWORD'], project_name=env['OS_PROJECT_NAME'],
        user_domain_name=env.get('OS_USER_DOMAIN_NAME', 'Default'),
        project_domain_name=env.get('OS_PROJECT_DOMAIN_NAME', 'Default')),
        verify=env.get('OS_CACERT') or True)


def owners(env):
    """(volume ids, snapshot ids, image ids) known to Cinder and Glance."""
    from cinderclient import client as cinder_client
    from glanceclient import client as glance_client

    sess = session_for(env)
    region = env.get('OS_REGION_NAME')
    cinder = cinder_client.Client('3', session=sess, region_name=region)
    glance = glance_client.Client('2', session=sess, region_name=region)
    opts = {'all_tenants': 1}
    volumes = {v.id for v in cinder.volumes.list(search_opts=opts)}
    snapshots = {s.id for s in cinder.volume_snapshots.list(
        search_opts=opts)}
    images = {i['id'] for i in glance.images.list(
        filters={'member_status': 'all', 'visibility': 'all'})}
    return volumes, snapshots, images


def _snap_children(rbd, img):
    snaps = {}
    for s in img.list_snaps():
        img.set_snap(s['name'])
        snaps[s['name']] = list(img.list_children())
        img.set_snap(None)
    return snaps


def rbd_inventory(ceph_conf, rados_id, pools, now=None):
    """What is in ``pools``: (tree, trash leaks).

    tree: {(pool, image): {snapshot: [children]}}; trash leaks: [(kind,
    item)] of trash entries whose deferred deletion is due and that no
    clone needs.
    """
    import rados
    import rbd

    now = time.time() if now is None else now
    cluster = rados.Rados(conffile=ceph_conf, rados_id=rados_id)
    cluster.connect()
    tree, trash = {}, []
    try:
        for pool in pools:
            with cluster.open_ioctx(pool) as ioctx:
                for name in rbd.RBD().list(ioctx):
                    try:
                        with rbd.Image(ioctx, name, read_only=True) as img:
                            tree[(pool, name)] = _snap_children(rbd, img)
                    except rbd.ImageNotFound:
                        pass
                for entry in rbd.RBD().trash_list(ioctx):
                    due = entry.get('deferment_end_time')
                    if due and due.timestamp() > now:
                        continue   # deferred deletion, not due yet
                    try:
                        with rbd.Image(ioctx, image_id=entry['id'],
                                       read_only=True) as img:
                            if any(_snap_children(rbd, img).values()):
                                continue
                    except rbd.ImageNotFound:
                        continue
                    trash.append(('trash', '%s/trash/%s (%s)' % (
                        pool, entry['id'], entry['name'])))
    finally:
        cluster.shutdown()
    return tree, trash


def uploads_in_flight(ceph_conf, rados_id, volumes_pool, now=None):
    """Image ids of the uploads whose owner beat within IN_FLIGHT_SECONDS.

    From the driver's upload journal in the volumes pool.
    """
    import rados

    from cinder_rbd_upload_clone import journal

    now = time.time() if now is None else now
    cluster = rados.Rados(conffile=ceph_conf, rados_id=rados_id)
    cluster.connect()
    try:
        with cluster.open_ioctx(volumes_pool) as ioctx:
            records = journal.Journal(rados, ioctx).records()
    finally:
        cluster.shutdown()
    return {image_id for image_id, record in records.items()
            if now - record.beat <= IN_FLIGHT_SECONDS}


def leaks(inventory, volumes, snapshots, images, volumes_pool='volumes',
          images_pool='images', in_flight=frozenset()):
    """[(kind, item)] of what no volume, snapshot or image owns.

    ``in_flight``: image ids of uploads under way, whose upload snapshot
    has no clone yet, or whose clone is not registered yet.
    """
    found = []
    for (pool, name), snaps in sorted(inventory.items()):
        if pool == images_pool:
            if name not in images:
                found.append(('orphan-image', '%s/%s' % (pool, name)))
                found.extend(('orphan-image', '%s/%s@%s' % (pool, name, s))
                             for s in snaps)
            continue
        if pool != volumes_pool:
            continue
        if name.endswith('.deleted'):
            if not any(children for children in snaps.values()):
                found.append(('deleted-volume-unneeded',
                              '%s/%s' % (pool, name)))
        elif not (name.startswith('volume-') and
                  name[len('volume-'):] in volumes):
            found.append(('orphan-volume', '%s/%s' % (pool, name)))
        for snap, children in snaps.items():
            if snap.startswith('snapshot-'):
                kind = 'orphan-snapshot'
                ok = snap[len('snapshot-'):] in snapshots
            elif snap.startswith('upload-') and snap.endswith('.clone_snap'):
                kind = 'orphan-upload-snapshot'
                image_id = snap[len('upload-'):-len('.clone_snap')]
                ok = (bool(children) and image_id in images or
                      image_id in in_flight)
            elif snap.endswith('.clone_snap'):
                kind = 'orphan-clone-snapshot'
                ok = bool(children)
            else:
                kind, ok = 'unknown-snapshot', False
            if not ok:
                found.append((kind, '%s/%s@%s' % (pool, name, snap)))
    return found


def check(ceph_conf, rados_id, openrc, volumes_pool, images_pool):
    """One look: (leaks, image ids of uploads in flight, RBD image count)."""
    volumes, snapshots, images = owners(credentials(openrc))
    inventory, trash = rbd_inventory(ceph_conf, rados_id,
                                     (volumes_pool, images_pool))
    in_flight = uploads_in_flight(ceph_conf, rados_id, volumes_pool)
    found = leaks(inventory, volumes, snapshots, images, volumes_pool,
                  images_pool, in_flight) + trash
    return found, in_flight, len(inventory)


def run(ceph_conf, rados_id, openrc, volumes_pool, images_pool, as_json,
        out=None, err=None, settle=0, sleep=time.sleep,
        clock=time.monotonic):
    """One leak check; prints the result and returns the exit status.

    ``settle``: seconds to look again (every SETTLE_INTERVAL) while leaks
    remain, for a cloud that has just been busy: the collector removes
    what upstream's driver leaves on its next sweep. Only what is still
    there when the time is up is reported.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    deadline = clock() + settle
    try:
        while True:
            found, in_flight, count = check(ceph_conf, rados_id, openrc,
                                            volumes_pool, images_pool)
            if not found or clock() >= deadline:
                break
            sleep(SETTLE_INTERVAL)
    except Exception as e:
        print('leak-check: %s: %s' % (type(e).__name__, e), file=err)
        return EXIT_ERROR
    if as_json:
        print(json.dumps({'leaks': [{'kind': k, 'item': i}
                                    for k, i in found],
                          'in_flight': sorted(in_flight),
                          'rbd_images': count}), file=out)
    else:
        for kind, item in found:
            print('LEAK %-24s %s' % (kind, item), file=out)
        if in_flight:
            print('%d upload(s) in flight (journal), not counted: %s' % (
                len(in_flight), ', '.join(sorted(in_flight))), file=out)
        print('%d leak(s) among %d RBD image(s)%s' % (
            len(found), count,
            ' after %d s of settling' % settle if found and settle else ''),
            file=out)
    return EXIT_LEAKS if found else EXIT_CLEAN

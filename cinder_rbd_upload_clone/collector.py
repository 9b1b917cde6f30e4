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

"""Collect what clone uploads leave once nobody needs it.

A clone upload makes a Glance image depend on a snapshot of a Cinder volume
in another service's pool. Neither service collects that snapshot: Glance
deletes its own RBD image and leaves the parent snapshot protected, and the
parent driver collects parents only when their children are Cinder volumes.
This module does, in three cases:

* an upload snapshot whose clone is gone (the image was deleted) is
  unprotected and removed;
* a volume the parent driver kept as a hidden ``<name>.deleted`` image only
  for such snapshots is removed when the last one goes, and the clone chain
  above it is walked as the parent driver does;
* a clone still marked *pending* (an upload that never finished: cinder-volume
  died, or cleanup failed) whose Glance image is not active is removed;
* a clone marked :data:`FLATTEN_KEY` (``clone_upload_flatten = background``)
  whose flatten did not finish (cinder-volume restarted) is flattened.

A pending clone carries RBD image metadata :data:`PENDING_KEY` (the host and
start time of its upload) from its creation until Glance serves the image.
"""

import time

from oslo_log import log as logging

from cinder.volume.drivers import rbd as rbd_driver

from cinder_rbd_upload_clone import clone

LOG = logging.getLogger(__name__)

PENDING_KEY = 'cinder_upload_clone_pending'
FLATTEN_KEY = 'cinder_upload_clone_flatten'
DELETED_SUFFIX = '.deleted'


def pending_value(host, now=None):
    if now is None:
        now = time.time()
    return '%s@%d' % (host or '', int(now))


def parse_pending(value):
    host, _sep, started = value.rpartition('@')
    try:
        return host, int(started)
    except ValueError:
        return host, 0


class Collector(object):
    """Finds and removes upload leftovers in one backend's pools.

    :param driver: the RBD driver (connections, ``rbd`` module, host).
    :param image_status: callable(image_id) returning the Glance status of
        an image, ``None`` when Glance does not know it; raising when
        Glance cannot answer (then nothing is removed).
    """

    def __init__(self, driver, image_status):
        self.driver = driver
        self.rbd = driver.rbd
        self.image_status = image_status

    def _proxy(self, client, ioctx, name, read_only=False):
        return rbd_driver.RBDVolumeProxy(self.driver, name, client=client,
                                         ioctx=ioctx, read_only=read_only)

    def _upload_snaps(self, image):
        return [s['name'] for s in image.list_snaps()
                if clone.image_id_of_snap(s['name'])]

    def _children(self, image, snap):
        image.set_snap(snap)
        try:
            return list(image.list_children())
        finally:
            image.set_snap(None)

    def _snap_time(self, image, snap):
        """Creation time (epoch seconds) of ``snap``, or now if gone."""
        for s in image.list_snaps():
            if s['name'] == snap:
                return image.get_snap_timestamp(s['id']).timestamp()
        return time.time()

    def _age(self, image, snap):
        return time.time() - self._snap_time(image, snap)

    def release_unused_snapshots(self, client, volume_name, min_age=0,
                                 in_flight=(), flattened=()):
        """Remove upload snapshots of a volume that no clone uses.

        :param min_age: leave snapshots younger than this many seconds
            (an upload elsewhere may be about to clone them), except those
            of ``flattened`` images: their upload is known to be over.
        :param in_flight: image ids of uploads running in this process.
        :returns: (removed, still used) counts.
        """
        removed = used = 0
        with self._proxy(client.cluster, client.ioctx, volume_name) as vol:
            for snap in self._upload_snaps(vol):
                image_id = clone.image_id_of_snap(snap)
                if (self._children(vol, snap) or image_id in in_flight or
                        (min_age and image_id not in flattened and
                         self._age(vol, snap) < min_age)):
                    used += 1
                    continue
                try:
                    vol.unprotect_snap(snap)
                except self.rbd.InvalidArgument:
                    pass    # not protected: an upload died before protect
                vol.remove_snap(snap)
                removed += 1
                LOG.info('Removed upload snapshot %(vol)s@%(snap)s: its '
                         'image is gone', {'vol': volume_name, 'snap': snap})
        return removed, used

    def _remove_hidden_volume(self, client, name):
        """Remove a ``.deleted`` volume with no snapshots; walk its chain."""
        with self._proxy(client.cluster, client.ioctx, name) as vol:
            if list(vol.list_snaps()):
                return False
            _pool, parent, parent_snap = self.driver._get_clone_info(
                vol.volume, name)
        self.driver.RBDProxy().remove(client.ioctx, name)
        LOG.info('Removed hidden volume %s: no image needs it any more',
                 name)
        if parent:
            self.driver._delete_clone_parent_refs(client, parent,
                                                  parent_snap)
        return True

    def _pending_clone(self, client, pool, image_id, snap_time):
        """The pending mark of clone ``pool/image_id``, or None.

        A clone with neither a pending mark nor Glance's snapshot was left
        between its creation and its mark (cinder-volume died in that one
        metadata call): it counts as pending since ``snap_time``, when its
        upload snapshot was taken, by an unknown host.
        """
        with clone.pool_ioctx(client, pool) as ioctx:
            try:
                with self._proxy(client.cluster, ioctx, image_id,
                                 read_only=True) as img:
                    try:
                        return img.metadata_get(PENDING_KEY)
                    except KeyError:
                        pass
                    if any(s['name'] == clone.GLANCE_SNAP
                           for s in img.list_snaps()):
                        return None
                    return pending_value('', snap_time)
            except self.rbd.ImageNotFound:
                return None

    def _remove_clone(self, client, pool, image_id):
        with clone.pool_ioctx(client, pool) as ioctx:
            with self._proxy(client.cluster, ioctx, image_id) as img:
                for snap in [s['name'] for s in img.list_snaps()]:
                    try:
                        img.unprotect_snap(snap)
                    except self.rbd.InvalidArgument:
                        pass
                    img.remove_snap(snap)
            self.driver.RBDProxy().remove(ioctx, image_id)

    def _clear_pending(self, client, pool, image_id):
        with clone.pool_ioctx(client, pool) as ioctx:
            with self._proxy(client.cluster, ioctx, image_id) as img:
                try:
                    img.metadata_remove(PENDING_KEY)
                except KeyError:
                    pass    # never marked (see _pending_clone)

    def flatten_clone(self, client, pool, image_id):
        """Flatten a registered clone and drop its flatten mark.

        Online: Glance keeps serving the image meanwhile. With the
        deep-flatten feature (in Ceph's default features) the clone's
        snapshot ``snap`` is detached from the parent too.
        """
        with clone.pool_ioctx(client, pool) as ioctx:
            with self._proxy(client.cluster, ioctx, image_id) as img:
                img.flatten()
                try:
                    img.metadata_remove(FLATTEN_KEY)
                except KeyError:
                    pass
        LOG.info('Flattened image clone %(pool)s/%(img)s: it no longer '
                 'depends on the volume', {'pool': pool, 'img': image_id})

    def _flatten_mark(self, client, pool, image_id, grace):
        """Whether this host should finish the flatten of a clone.

        The mark names the host whose driver made it (``host@time``):
        backends sharing a pool each finish their own, and anyone finishes
        one left longer than ``grace`` by a host that is gone.
        """
        with clone.pool_ioctx(client, pool) as ioctx:
            try:
                with self._proxy(client.cluster, ioctx, image_id,
                                 read_only=True) as img:
                    meta = dict(img.metadata_list())
            except self.rbd.ImageNotFound:
                return False
        if FLATTEN_KEY not in meta or PENDING_KEY in meta:
            return False
        host, started = parse_pending(meta[FLATTEN_KEY])
        return (host == (self.driver.host or '') or
                time.time() - started > grace)

    def finish_flattens(self, client, volume_name, busy=(), grace=0):
        """Flatten clones of this volume still marked for it.

        :returns: the ids of the images flattened.
        """
        done = []
        with self._proxy(client.cluster, client.ioctx, volume_name,
                         read_only=True) as vol:
            children = [child for snap in self._upload_snaps(vol)
                        for child in self._children(vol, snap)]
        for pool, image_id in children:
            if image_id in busy or not self._flatten_mark(
                    client, pool, image_id, grace):
                continue
            self.flatten_clone(client, pool, image_id)
            done.append(image_id)
        return done

    def collect_abandoned(self, client, volume_name, grace, own_host=None,
                          in_flight=()):
        """Remove clones of this volume left by uploads that never ended.

        A pending clone is abandoned when its upload started more than
        ``grace`` seconds ago, or was started by ``own_host`` (the sweep at
        start-up: no upload of this host can still run), and Glance does
        not serve its image.
        """
        removed = 0
        with self._proxy(client.cluster, client.ioctx, volume_name,
                         read_only=True) as vol:
            children = [(snap, self._snap_time(vol, snap), child)
                        for snap in self._upload_snaps(vol)
                        for child in self._children(vol, snap)]
        now = time.time()
        for snap, snap_time, (pool, image_id) in children:
            if (image_id in in_flight or
                    image_id != clone.image_id_of_snap(snap)):
                continue
            marker = self._pending_clone(client, pool, image_id, snap_time)
            if marker is None:
                continue
            host, started = parse_pending(marker)
            expired = now - started > grace
            if not (expired or (own_host and host == own_host)):
                continue
            status = self.image_status(image_id)
            if status == 'active':
                self._clear_pending(client, pool, image_id)
                continue
            if status is None and not expired:
                # Not found may also mean "not visible to Cinder's service
                # user": only the grace period decides then.
                continue
            self._remove_clone(client, pool, image_id)
            removed += 1
            LOG.warning('Removed clone %(pool)s/%(img)s of %(vol)s left by '
                        'an upload that did not finish (image %(status)s)',
                        {'pool': pool, 'img': image_id, 'vol': volume_name,
                         'status': status or 'unknown to Glance'})
        return removed

    def sweep(self, grace, min_age, own_host=None, in_flight=()):
        """One pass over the volumes pool; returns counts of what went."""
        counts = {'snapshots': 0, 'clones': 0, 'volumes': 0,
                  'flattened': 0}
        with rbd_driver.RADOSClient(self.driver) as client:
            for name in self.driver.RBDProxy().list(client.ioctx):
                try:
                    with self._proxy(client.cluster, client.ioctx, name,
                                     read_only=True) as vol:
                        if not self._upload_snaps(vol):
                            if not name.endswith(DELETED_SUFFIX):
                                continue
                            has_any = bool(list(vol.list_snaps()))
                            if has_any:
                                continue
                    counts['clones'] += self.collect_abandoned(
                        client, name, grace, own_host, in_flight)
                    flattened = self.finish_flattens(client, name,
                                                     in_flight, grace)
                    counts['flattened'] += len(flattened)
                    # No upload can start on a deleted (hidden) volume:
                    # its unused snapshots need not wait for min_age.
                    hidden = name.endswith(DELETED_SUFFIX)
                    removed, used = self.release_unused_snapshots(
                        client, name, 0 if hidden else min_age, in_flight,
                        flattened)
                    counts['snapshots'] += removed
                    if hidden and not used:
                        if self._remove_hidden_volume(client, name):
                            counts['volumes'] += 1
                except self.rbd.ImageNotFound:
                    continue    # removed meanwhile
                except Exception:
                    LOG.exception('Collecting upload leftovers of %s failed',
                                  name)
        return counts

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
This module does, and finishes or undoes uploads whose owner is gone (see
:mod:`journal`):

* an upload whose owner is gone and whose image Glance serves is done: its
  record goes (or becomes a flatten owed);
* an upload whose owner is gone and whose image Glance positively does not
  use (deleted, killed, or queued without its import lock; a 404 counts
  only for a ``[glance]`` user that sees every project's images) has its
  clone removed;
* a background flatten whose owner is gone is finished, when the pool has
  room for it;
* an upload snapshot without a clone and without an upload in the journal
  is unprotected and removed;
* a volume the parent driver kept as a hidden ``<name>.deleted`` image only
  for such snapshots is removed (to the RBD trash when the backend defers
  deletions) when the last one goes, and the clone chain above it is
  walked as the parent driver does;
* a hidden ``<name>.deleted`` volume the parent driver left for ever
  (see :meth:`Collector.reclaim_hidden_volume`) is reclaimed when Cinder
  has no such volume, none of its snapshots has a clone and none is held
  by an upload (``clone_upload_reclaim_hidden_volumes``).

Nothing is removed on a doubt: an image Glance cannot be asked about, or
one it may still be importing, keeps its clone, and the sweep says why.
"""

import contextlib
import datetime
import time

from oslo_config import cfg
from oslo_log import log as logging

from cinder import context as cinder_context
from cinder import objects
from cinder.volume.drivers import rbd as rbd_driver

from cinder_rbd_upload_clone import clone
from cinder_rbd_upload_clone import journal as journal_mod

LOG = logging.getLogger(__name__)
CONF = cfg.CONF

DELETED_SUFFIX = '.deleted'
# Glance serves the image: the upload is done.
SERVED = ('active', 'deactivated')
# Glance's delayed delete: its scrubber removes the location's data (and an
# operator may still restore the image).
GLANCE_OWNS = ('pending_delete',)
GONE = ('deleted', 'killed')


class FlattenInterrupted(Exception):
    """A flatten of this clone was interrupted; it must not be resumed.

    The writer that died still holds the clone's exclusive lock. Ceph 16
    (16.2.15)'s librbd, resuming such a flatten from another client,
    detaches the parent while the objects that were being copied when
    the writer died read as zeros, in the image and in its snapshot
    ``snap`` (reproduced with librbd alone, and by
    tests/e2e/test_active_active.py). Left unflattened, the clone still
    reads its data through its parent.
    """


def lock_owners(image):
    """Holders of an open image's managed exclusive lock ([] if none)."""
    get = getattr(image, 'lock_get_owners', None)
    if get is None:
        return []
    try:
        return list(get())
    except Exception:
        return []


def snap_epoch(timestamp):
    """Epoch seconds of an RBD snapshot time (a naive datetime in UTC)."""
    if timestamp.tzinfo is None:
        timestamp = timestamp.replace(tzinfo=datetime.timezone.utc)
    return timestamp.timestamp()


class Collector(object):
    """Finds and removes upload leftovers in one backend's pools.

    :param driver: the RBD driver (connections, ``rbd`` module, host,
        configuration, flatten limiter).
    :param image_state: callable(image_id) returning the
        :class:`glance_service.ImageState` of an image; raising when Glance
        cannot answer (then nothing is removed).
    :param sees_all: whether a 404 from ``image_state`` proves an image is
        deleted (the ``[glance]`` user sees every project's images).
    """

    def __init__(self, driver, image_state, sees_all=False):
        self.driver = driver
        self.rbd = driver.rbd
        self.image_state = image_state
        self.sees_all = sees_all

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

    def _age(self, image, snap):
        """Seconds since ``snap`` was taken (0 if it is gone)."""
        for s in image.list_snaps():
            if s['name'] == snap:
                return time.time() - snap_epoch(
                    image.get_snap_timestamp(s['id']))
        return 0

    # Upload snapshots and hidden volumes.

    def release_unused_snapshots(self, client, volume_name, min_age=0,
                                 busy=()):
        """Remove upload snapshots of a volume that no upload or clone uses.

        Positive evidence: the snapshot has no child (no clone, flattened
        or not, reads through it) and no upload of any host holds it
        (``busy``: image ids with a journal record; an upload writes its
        record before it takes its snapshot).

        :param min_age: leave snapshots younger than this many seconds.
        :returns: (removed, still used) counts.
        """
        removed = used = 0
        with self._proxy(client.cluster, client.ioctx, volume_name) as vol:
            for snap in self._upload_snaps(vol):
                image_id = clone.image_id_of_snap(snap)
                if (image_id in busy or self._children(vol, snap) or
                        (min_age and self._age(vol, snap) < min_age)):
                    used += 1
                    continue
                try:
                    vol.unprotect_snap(snap)
                except self.rbd.InvalidArgument:
                    pass    # not protected: an upload died before protect
                vol.remove_snap(snap)
                removed += 1
                LOG.info('Removed upload snapshot %(vol)s@%(snap)s: no '
                         'clone and no upload uses it',
                         {'vol': volume_name, 'snap': snap})
        return removed, used

    def remove_hidden_volume(self, client, name):
        """Remove a ``.deleted`` volume with no snapshots; walk its chain.

        Honours the backend's deferred deletion as the parent driver's
        delete does: the image goes to the RBD trash for
        ``deferred_deletion_delay`` seconds.
        """
        with self._proxy(client.cluster, client.ioctx, name) as vol:
            if list(vol.list_snaps()):
                return False
            _pool, parent, parent_snap = self.driver._get_clone_info(
                vol.volume, name)
        conf = self.driver.configuration
        if conf.enable_deferred_deletion:
            self.driver.RBDProxy().trash_move(
                client.ioctx, name, conf.deferred_deletion_delay)
            how = 'moved to the trash'
        else:
            self.driver.RBDProxy().remove(client.ioctx, name)
            how = 'removed'
        LOG.info('Hidden volume %(name)s %(how)s: no image needs it any '
                 'more', {'name': name, 'how': how})
        if parent:
            self.driver._delete_clone_parent_refs(client, parent,
                                                  parent_snap)
        return True

    def _volume_id(self, hidden_name):
        """The Cinder volume id a hidden RBD name was made from, or None."""
        name = hidden_name[:-len(DELETED_SUFFIX)]
        prefix, _sep, suffix = CONF.volume_name_template.partition('%s')
        if not (name.startswith(prefix) and name.endswith(suffix)):
            return None
        return name[len(prefix):len(name) - len(suffix)] or None

    def _cinder_knows(self, volume_id):
        """Whether Cinder has a volume with this id or name id."""
        ctx = cinder_context.get_admin_context()
        for key in ('id', '_name_id'):
            if objects.VolumeList.get_all(ctx, filters={key: volume_id},
                                          limit=1):
                return True
        return False

    def reclaim_hidden_volume(self, client, name, busy=()):
        """Remove a hidden volume the parent driver would keep for ever.

        Cinder 29's ``_delete_volume`` keeps a volume with a
        ``*.clone_snap`` snapshot as ``<name>.deleted``; a clone deleted
        through the fast path (a plain ``remove``) never walks back to
        its parent, so the parent keeps the clone's protected snapshot,
        childless, and stays hidden with all its data. Reclaimed only on
        positive evidence: Cinder's database has no volume with this id
        (or name id), no snapshot of it has a child, and no snapshot is
        held by an upload in the journal.

        :returns: True when removed.
        """
        def keep(why):
            LOG.debug('Hidden volume %(name)s stays: %(why)s',
                      {'name': name, 'why': why})
            return False

        volume_id = self._volume_id(name)
        if volume_id is None:
            return keep('its name is not a Cinder volume name')
        try:
            if self._cinder_knows(volume_id):
                return keep('Cinder has volume %s' % volume_id)
        except Exception as e:
            return keep('cannot ask Cinder\'s database: %s' % e)
        with self._proxy(client.cluster, client.ioctx, name) as vol:
            snaps = [s['name'] for s in vol.list_snaps()]
            for snap in snaps:
                if clone.image_id_of_snap(snap) in busy:
                    return keep('snapshot %s belongs to an upload' % snap)
                if self._children(vol, snap):
                    return keep('snapshot %s has a clone' % snap)
            for snap in snaps:
                if vol.is_protected_snap(snap):
                    vol.unprotect_snap(snap)
                vol.remove_snap(snap)
        LOG.info('Reclaiming hidden volume %(name)s: Cinder has no volume '
                 '%(id)s and none of its snapshots (%(snaps)s) has a clone',
                 {'name': name, 'id': volume_id,
                  'snaps': ', '.join(snaps) or 'none'})
        return self.remove_hidden_volume(client, name)

    def clone_parent(self, client, volume_name):
        """(parent, parent snapshot) of a Cinder clone volume, or None."""
        with self._proxy(client.cluster, client.ioctx, volume_name,
                         read_only=True) as vol:
            _pool, parent, parent_snap = self.driver._get_clone_info(
                vol.volume, volume_name)
        return (parent, parent_snap) if parent else None

    def release_clone_parent(self, client, volume_name, parent,
                             parent_snap):
        """After a clone volume is gone: drop its snapshot on the parent.

        The parent driver's fast delete path removes a clone without
        walking back to its parent (Cinder 29 ``_delete_volume`` returns
        right after ``remove``), so the parent keeps the clone's
        protected ``<clone>.clone_snap`` and, if it was deleted, stays a
        hidden ``.deleted`` image for ever. Positive evidence first: the
        clone is neither there nor hidden, and the snapshot has no child
        (a trashed clone still counts as one).
        """
        for name in (volume_name, volume_name + DELETED_SUFFIX):
            try:
                with self._proxy(client.cluster, client.ioctx, name,
                                 read_only=True):
                    return False
            except self.rbd.ImageNotFound:
                pass
        try:
            with self._proxy(client.cluster, client.ioctx, parent,
                             read_only=True) as vol:
                if parent_snap not in [s['name'] for s in vol.list_snaps()]:
                    return False    # the parent driver walked it already
                if self._children(vol, parent_snap):
                    return False
        except self.rbd.ImageNotFound:
            return False
        self.driver._delete_clone_parent_refs(client, parent, parent_snap)
        LOG.info('Released %(parent)s@%(snap)s: its clone %(vol)s is gone',
                 {'parent': parent, 'snap': parent_snap,
                  'vol': volume_name})
        return True

    # Clones.

    def _remove_clone(self, client, pool, image_id):
        """Remove the clone ``pool/image_id`` and its snapshots, if any."""
        with clone.pool_ioctx(client, pool) as ioctx:
            try:
                with self._proxy(client.cluster, ioctx, image_id) as img:
                    for snap in [s['name'] for s in img.list_snaps()]:
                        try:
                            img.unprotect_snap(snap)
                        except self.rbd.InvalidArgument:
                            pass
                        img.remove_snap(snap)
            except self.rbd.ImageNotFound:
                return False
            self.driver.RBDProxy().remove(ioctx, image_id)
        return True

    def flatten_clone(self, client, pool, image_id):
        """Flatten a registered clone, if it may; return (done, reason).

        Online: Glance keeps serving the image meanwhile. Only with the
        deep-flatten feature does the flatten detach the clone's snapshot
        ``snap`` (what Glance serves) from the volume too; without it the
        flatten would copy the data and leave the dependency, so it is not
        done. Nor is it when the pool has no room for it.
        """
        with clone.pool_ioctx(client, pool) as ioctx:
            try:
                with self._proxy(client.cluster, ioctx, image_id) as img:
                    try:
                        img.parent_info()
                    except self.rbd.ImageNotFound:
                        return True, 'already independent'
                    if not clone.has_deep_flatten(self.driver, img):
                        return False, ('clone %s/%s has no deep-flatten '
                                       'feature: a flatten would leave its '
                                       'snapshot on the volume' %
                                       (pool, image_id))
                    owners = lock_owners(img)
                    if owners:
                        raise FlattenInterrupted(
                            'clone %s/%s is still locked by %s, a writer '
                            'that died flattening it; Ceph\'s librbd '
                            'leaves the objects it was copying empty when '
                            'another client resumes that flatten' % (
                                pool, image_id, ', '.join(
                                    str(o.get('owner', o))
                                    if isinstance(o, dict) else str(o)
                                    for o in owners)))
                    room, why = clone.flatten_room(client, pool, img)
                    if not room:
                        return False, why
                    with self.driver._semaphore:
                        img.flatten()
            except self.rbd.ImageNotFound:
                return True, 'clone gone'
        LOG.info('Flattened image clone %(pool)s/%(img)s: it no longer '
                 'depends on the volume', {'pool': pool, 'img': image_id})
        return True, 'flattened'

    def _volume_holding(self, client, volume_name, image_id):
        """The volume, or the hidden volume it became, with the snapshot."""
        snap = clone.upload_snap_name(image_id)
        for name in (volume_name, volume_name + DELETED_SUFFIX):
            try:
                with self._proxy(client.cluster, client.ioctx, name,
                                 read_only=True) as vol:
                    if snap in [s['name'] for s in vol.list_snaps()]:
                        return name
            except self.rbd.ImageNotFound:
                pass
        return None

    def release_volume_of(self, client, journal, record):
        """After an upload's clone went or was flattened: free its volume.

        Call it once the upload's record is gone: snapshots of uploads
        still in the journal stay.
        """
        name = self._volume_holding(client, record.volume, record.image_id)
        if not name:
            return
        _removed, used = self.release_unused_snapshots(
            client, name, busy=frozenset(journal.records()))
        if name.endswith(DELETED_SUFFIX) and not used:
            self.remove_hidden_volume(client, name)

    def finish_flatten(self, client, journal, record):
        """Flatten a clone owed a flatten; drop its record when done.

        A flatten interrupted by its writer's death is not resumed: the
        record goes and the image stays a clone (its upload snapshot is
        then collected when the image is deleted).
        """
        try:
            done, why = self.flatten_clone(client, record.pool,
                                           record.image_id)
        except FlattenInterrupted as e:
            LOG.warning('Background flatten of image %(img)s not resumed: '
                        '%(why)s. The image stays a clone of %(vol)s, with '
                        'its data', {'img': record.image_id, 'why': e,
                                     'vol': record.volume})
            journal.remove(record.image_id)
            return False
        if not done:
            LOG.warning('Background flatten of image %(img)s deferred: '
                        '%(why)s', {'img': record.image_id, 'why': why})
            return False
        journal.remove(record.image_id)
        self.release_volume_of(client, journal, record)
        return True

    # Uploads whose owner is gone.

    def _evidence(self, record):
        """(action, reason) for an upload whose owner is gone.

        action: 'served' (Glance serves the image), 'glance' (Glance owns
        the clone now), 'remove' (Glance positively does not use the
        clone), or 'keep' (nothing is known for sure).
        """
        try:
            state = self.image_state(record.image_id)
        except Exception as e:
            return 'keep', 'Glance cannot be asked (%s: %s)' % (
                type(e).__name__, e)
        if state.status in SERVED:
            return 'served', 'image %s' % state.status
        if state.status in GLANCE_OWNS:
            return 'glance', 'image %s' % state.status
        if state.status in GONE:
            return 'remove', 'image %s' % state.status
        if state.status is None:
            if self.sees_all:
                return 'remove', 'image deleted (404 to an admin)'
            return 'keep', ('Glance answers 404 to a [glance] user that '
                            'does not see every project\'s images')
        if state.status == 'queued' and not state.locked:
            return 'remove', 'image queued without a location'
        running = ', import task running' if state.locked else ''
        return 'keep', 'image %s%s' % (state.status, running)

    def _working_on(self, image_id):
        """While this process works on a claimed record: it beats for it."""
        working = getattr(self.driver, '_working_on', None)
        return working(image_id) if working else contextlib.nullcontext()

    def settle(self, client, journal, record, is_gone):
        """Finish or undo one upload whose owner is gone.

        :returns: 'removed', 'served', 'flattened', 'kept' or 'busy'.
        """
        host = self.driver.host
        if record.state == journal_mod.FLATTEN:
            mine = journal.claim(record.image_id, host, is_gone)
            if mine is None:
                return 'busy'
            LOG.info('Background flatten of image %(img)s left by %(host)s '
                     'taken over by %(me)s',
                     {'img': record.image_id, 'me': host,
                      'host': record.host or 'unknown'})
            with self._working_on(record.image_id):
                done = self.finish_flatten(client, journal, mine)
            return 'flattened' if done else 'kept'
        action, why = self._evidence(record)
        if action == 'keep':
            LOG.warning('Upload of volume %(vol)s to image %(img)s was left '
                        'by %(host)s; its clone %(pool)s/%(img)s stays: '
                        '%(why)s', {'vol': record.volume,
                                    'img': record.image_id,
                                    'host': record.host or 'unknown',
                                    'pool': record.pool, 'why': why})
            return 'kept'
        mine = journal.claim(record.image_id, host, is_gone)
        if mine is None:
            return 'busy'
        with self._working_on(record.image_id):
            return self._settle_claimed(client, journal, record, action,
                                        why)

    def _settle_claimed(self, client, journal, record, action, why):
        if action == 'served':
            owed = journal.served(record.image_id)
            LOG.info('Upload of volume %(vol)s to image %(img)s left by '
                     '%(host)s was done (%(why)s)',
                     {'vol': record.volume, 'img': record.image_id,
                      'host': record.host or 'unknown', 'why': why})
            if owed is not None:
                return ('flattened' if self.finish_flatten(
                    client, journal, owed) else 'served')
            return 'served'
        if action == 'glance':
            journal.remove(record.image_id)
            return 'served'
        removed = self._remove_clone(client, record.pool, record.image_id)
        journal.remove(record.image_id)
        self.release_volume_of(client, journal, record)
        args = {'pool': record.pool, 'img': record.image_id,
                'vol': record.volume, 'why': why,
                'host': record.host or 'unknown'}
        if removed:
            LOG.warning('Removed clone %(pool)s/%(img)s of %(vol)s left by '
                        'an upload of %(host)s that did not finish (%(why)s)',
                        args)
        else:
            LOG.warning('Upload of volume %(vol)s to image %(img)s left by '
                        '%(host)s did not finish (%(why)s); it had made no '
                        'clone: its record is dropped', args)
        return 'removed'

    def sweep(self, is_gone, min_age, reclaim=False):
        """One pass: the journal, then the volumes pool.

        :param is_gone: callable(record) -> whether its owner is gone
            (:func:`journal.owner_gone` bound to this process: records of
            its uploads in flight are never gone).
        :returns: counts of what was done.
        """
        counts = {'snapshots': 0, 'clones': 0, 'volumes': 0,
                  'flattened': 0, 'served': 0, 'kept': 0, 'reclaimed': 0}
        with rbd_driver.RADOSClient(self.driver) as client:
            journal = journal_mod.Journal(self.driver.rados, client.ioctx)
            for record in journal.records().values():
                if not is_gone(record):
                    continue
                try:
                    outcome = self.settle(client, journal, record, is_gone)
                except Exception:
                    LOG.exception('Settling the upload of image %s failed',
                                  record.image_id)
                    continue
                key = {'removed': 'clones', 'flattened': 'flattened',
                       'served': 'served', 'kept': 'kept'}.get(outcome)
                if key:
                    counts[key] += 1
            busy = frozenset(journal.records())
            for name in self.driver.RBDProxy().list(client.ioctx):
                try:
                    self._sweep_volume(client, name, min_age, busy, counts,
                                       reclaim)
                except self.rbd.ImageNotFound:
                    continue    # removed meanwhile
                except Exception:
                    LOG.exception('Collecting upload leftovers of %s failed',
                                  name)
        return counts

    def _sweep_volume(self, client, name, min_age, busy, counts, reclaim):
        hidden = name.endswith(DELETED_SUFFIX)
        with self._proxy(client.cluster, client.ioctx, name,
                         read_only=True) as vol:
            snaps = [s['name'] for s in vol.list_snaps()]
        used = 0
        if any(clone.image_id_of_snap(s) for s in snaps):
            # No upload can start on a deleted (hidden) volume: its unused
            # snapshots need not wait for min_age.
            removed, used = self.release_unused_snapshots(
                client, name, 0 if hidden else min_age, busy)
            counts['snapshots'] += removed
        if not hidden or used:
            return
        if self.remove_hidden_volume(client, name):
            counts['volumes'] += 1
        elif reclaim and self.reclaim_hidden_volume(client, name, busy):
            counts['reclaimed'] += 1

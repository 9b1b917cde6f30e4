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

"""The upload journal: who owns each clone upload that is not finished.

As Ceph-CSI keeps its own omap object beside the images it manages, the
driver keeps one RADOS object, :data:`OBJECT`, in the volumes pool: one
omap key per Glance image id whose clone upload has not finished, with a
JSON record of its state, its owner and times. This module is the only
one that writes, reads and judges these records; the mixin, the clone
steps and the collector call it.

States:

* :data:`PENDING`: written before the upload makes anything in RBD, kept
  until Glance serves the image (or the upload removed what it made).
  While it exists, the upload snapshot and the clone belong to the upload.
* :data:`FLATTEN`: Glance serves the image; its clone still depends on the
  volume and a background flatten is owed (``clone_upload_flatten =
  background``).

Ownership: a record names its owner, the ``host`` of the cinder-volume
backend that wrote it, and ``beat``, the last time the owner said it is
alive (:meth:`Journal.beat`, from a periodic task). A record is the
owner's while the owner lives; :func:`owner_gone` judges that, and
:meth:`Journal.claim` lets another process take a record over, once.
All writes hold the object's RADOS lock for a moment, so a take-over and
a heartbeat never cross.
"""

import collections
import contextlib
import json
import random
import time
import uuid

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

OBJECT = 'rbd_upload_clone.journal'
LOCK_NAME = 'rbd_upload_clone.journal'
PENDING = 'pending'
FLATTEN = 'flatten'
STATES = (PENDING, FLATTEN)

_FIELDS = ('image_id', 'state', 'volume', 'pool', 'host', 'started',
           'beat', 'flatten')


class Record(collections.namedtuple('Record', _FIELDS)):
    """One upload.

    :ivar image_id: the Glance image id (the clone's RBD name).
    :ivar state: :data:`PENDING` or :data:`FLATTEN`.
    :ivar volume: the volume's RBD image name.
    :ivar pool: the Glance store's pool (where the clone is).
    :ivar host: the owner (cinder-volume ``host@backend``).
    :ivar started: epoch seconds when the upload began.
    :ivar beat: epoch seconds of the owner's last sign of life.
    :ivar flatten: a background flatten is owed once the image is served.
    """

    def encode(self):
        return json.dumps({k: v for k, v in self._asdict().items()
                           if k != 'image_id'}, sort_keys=True)

    @classmethod
    def decode(cls, image_id, value):
        data = json.loads(value)
        return cls(image_id=image_id, state=data['state'],
                   volume=data['volume'], pool=data['pool'],
                   host=data.get('host', ''),
                   started=float(data.get('started', 0)),
                   beat=float(data.get('beat', 0)),
                   flatten=bool(data.get('flatten', False)))


def new_record(image_id, volume, pool, host, flatten=False, now=None):
    now = time.time() if now is None else now
    return Record(image_id=image_id, state=PENDING, volume=volume,
                  pool=pool, host=host or '', started=now, beat=now,
                  flatten=flatten)


def owner_gone(record, host, in_flight, process_start, grace, now=None):
    """Whether nobody works on ``record`` any more.

    A record of this host (``host``) is this process's while its image is
    in ``in_flight`` (the live set, not a copy taken earlier: uploads add
    themselves before they write their record). Otherwise it was left by
    an earlier process of this host if it began before this process
    started, or by this process if its owner stopped beating for
    ``grace`` seconds. A record of another host is gone only once its
    owner stopped beating for ``grace`` seconds.
    """
    now = time.time() if now is None else now
    stale = now - record.beat > grace
    if record.host == (host or ''):
        if record.image_id in in_flight:
            return False
        return record.started < process_start or stale
    return stale


class JournalBusy(Exception):
    """The journal's lock stayed taken; try again later."""


class Journal(object):
    """The journal of one volumes pool.

    :param rados_module: the ``rados`` module (the driver's ``rados``).
    :param ioctx: an open ioctx on the volumes pool.
    """

    def __init__(self, rados_module, ioctx, lock_timeout=60.0):
        self.rados = rados_module
        self.ioctx = ioctx
        self.lock_timeout = lock_timeout

    @contextlib.contextmanager
    def _locked(self):
        cookie = uuid.uuid4().hex
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.01
        while True:
            try:
                # The lock expires on its own if its holder dies.
                self.ioctx.lock_exclusive(OBJECT, LOCK_NAME, cookie,
                                          desc='rbd-upload-clone',
                                          duration=30)
                break
            except (self.rados.ObjectBusy, self.rados.ObjectExists):
                if time.monotonic() > deadline:
                    raise JournalBusy('journal %s stayed locked for %ss' %
                                      (OBJECT, self.lock_timeout))
                # Jitter: many uploads at once must not retry in step.
                time.sleep(delay * random.uniform(0.5, 1.5))
                delay = min(delay * 2, 0.2)
        try:
            yield
        finally:
            try:
                self.ioctx.unlock(OBJECT, LOCK_NAME, cookie)
            except self.rados.Error as e:
                LOG.warning('Could not unlock the upload journal: %s', e)

    def _write(self, records=(), remove=()):
        with self.rados.WriteOpCtx() as op:
            if records:
                self.ioctx.set_omap(op, tuple(r.image_id for r in records),
                                    tuple(r.encode() for r in records))
            if remove:
                self.ioctx.remove_omap_keys(op, tuple(remove))
            self.ioctx.operate_write_op(op, OBJECT)

    def _read(self, keys=None):
        with self.rados.ReadOpCtx() as op:
            if keys is None:
                it, _ret = self.ioctx.get_omap_vals(op, '', '', -1)
            else:
                it, _ret = self.ioctx.get_omap_vals_by_keys(op, tuple(keys))
            try:
                self.ioctx.operate_read_op(op, OBJECT)
            except self.rados.ObjectNotFound:
                return {}
            return dict(it)

    def _decode(self, raw):
        records = {}
        for key, value in raw.items():
            key = key.decode() if isinstance(key, bytes) else key
            try:
                records[key] = Record.decode(key, value)
            except (ValueError, KeyError, TypeError) as e:
                LOG.warning('Upload journal entry %(key)s is unreadable '
                            '(%(err)s); left alone', {'key': key, 'err': e})
        return records

    def records(self):
        """Every record, by image id."""
        return self._decode(self._read())

    def get(self, image_id):
        return self._decode(self._read([image_id])).get(image_id)

    def put(self, record):
        with self._locked():
            self._write(records=[record])

    def remove(self, image_id):
        with self._locked():
            self._write(remove=[image_id])

    def served(self, image_id):
        """Glance serves the image: drop the record or owe its flatten."""
        with self._locked():
            record = self._decode(self._read([image_id])).get(image_id)
            if record is None:
                return None
            if record.flatten:
                record = record._replace(state=FLATTEN, beat=time.time())
                self._write(records=[record])
                return record
            self._write(remove=[image_id])
            return None

    def beat(self, image_ids, host, now=None):
        """Say that ``host`` still works on these records."""
        if not image_ids:
            return
        now = time.time() if now is None else now
        with self._locked():
            mine = [r._replace(beat=now) for r in self._decode(
                self._read(list(image_ids))).values()
                if r.host == (host or '')]
            if mine:
                self._write(records=mine)

    def claim(self, image_id, host, is_gone, now=None):
        """Take over a record whose owner is gone; None if it is not.

        :param is_gone: callable(record) judging the record as read under
            the lock (another process may have claimed it meanwhile).
        :returns: the record as now owned by ``host``, or None.
        """
        now = time.time() if now is None else now
        with self._locked():
            record = self._decode(self._read([image_id])).get(image_id)
            if record is None or not is_gone(record):
                return None
            record = record._replace(host=host or '', beat=now)
            self._write(records=[record])
            return record

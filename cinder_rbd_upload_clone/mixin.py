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

"""The mixin that wires discovery, decision, clone and location together.

Put :class:`UploadCloneMixin` before ``RBDDriver`` (or a subclass of it) in
a class's bases. With ``enable_clone_optimization`` off, every method
behaves exactly as the parent's.
"""

import contextlib
import threading
import time

import glanceclient.exc
from oslo_log import log as logging
from oslo_service import loopingcall

from cinder import context as cinder_context
from cinder import exception
from cinder.i18n import _
from cinder.image import image_utils  # noqa: F401 (see stores.py)
from cinder.image import glance  # noqa: H306
from cinder.volume import driver as cinder_driver
from cinder.volume.drivers import rbd as rbd_driver

from cinder_rbd_upload_clone import clone
from cinder_rbd_upload_clone import collector
from cinder_rbd_upload_clone import compat
from cinder_rbd_upload_clone import eligibility
from cinder_rbd_upload_clone import location
from cinder_rbd_upload_clone import options
from cinder_rbd_upload_clone import stores

LOG = logging.getLogger(__name__)


class UploadCloneMixin(object):
    """Upload RBD volumes to Glance rbd stores as copy-on-write clones."""

    def __init__(self, *args, **kwargs):
        super(UploadCloneMixin, self).__init__(*args, **kwargs)
        self.configuration.append_config_values(options.upload_clone_opts)
        self._store_discovery_cache = None
        self._uploads_in_flight = set()
        self._in_flight_lock = threading.Lock()
        self._collector_task = None
        self._flattens_in_flight = set()
        self._flatten_slots_sem = None

    @classmethod
    def get_driver_options(cls):
        return (super(UploadCloneMixin, cls).get_driver_options() +
                options.upload_clone_opts)

    @property
    def _clone_upload_enabled(self):
        # ``is True``: only a real BoolOpt value turns the feature on.
        return self.configuration.safe_get(
            'enable_clone_optimization') is True

    @property
    def _store_discovery(self):
        if self._store_discovery_cache is None:
            self._store_discovery_cache = stores.StoreDiscovery(
                self.configuration.clone_upload_stores_cache_ttl)
        return self._store_discovery_cache

    def _update_volume_stats(self):
        super(UploadCloneMixin, self)._update_volume_stats()
        # Always, true or false; _init_vendor_properties describes it.
        # False on Cinder 26 (2025.1) even with the option on: uploads
        # cannot clone there (compat.GLANCE_PRIVILEGED_CALLS).
        self._stats['clone_upload_enabled'] = (
            self._clone_upload_enabled and compat.GLANCE_PRIVILEGED_CALLS)

    def _init_vendor_properties(self):
        """The parent's vendor properties plus ``clone_upload_enabled``.

        The prefix is the parent's vendor prefix, else the ``vendor_name``
        the driver reports (RBDDriver: ``Open Source``); Cinder makes it
        ``vendor_prefix`` of the capabilities.
        """
        parent = super(UploadCloneMixin, self)._init_vendor_properties
        if parent.__func__ is cinder_driver.BaseVD._init_vendor_properties:
            # RBDDriver has none; the base one only logs that.
            properties, vendor = {}, None
        else:
            properties, vendor = parent()
        properties = dict(properties or {})
        vendor = (vendor or (self._stats or {}).get('vendor_name') or
                  'Open Source')
        self._set_property(
            properties, '%s:clone_upload_enabled' % vendor,
            'Clone upload to Glance',
            _('Reported by the backend, true or false: whether it uploads '
              'volumes to Glance rbd stores on its Ceph cluster as '
              'copy-on-write clones instead of copying their data '
              '(enable_clone_optimization of the backend, '
              'cinder-rbd-upload-clone; never on Cinder 2025.1). Select '
              'backends by it with the '
              'volume type extra spec '
              'capabilities:clone_upload_enabled=\'<is> True\'.'),
            'boolean')
        return properties, vendor

    # The decision.

    def _upload_decision(self, context, volume, image_meta, cluster_fsid):
        return eligibility.decide(
            enabled=self._clone_upload_enabled,
            backend=self._backend_name,
            image_meta=image_meta,
            volume=volume,
            find_store=lambda store_id: self._store_discovery.target_store(
                context, store_id),
            cluster_fsid=cluster_fsid)

    # The upload.

    def copy_volume_to_image(self, context, volume, image_service,
                             image_meta):
        if not self._clone_upload_enabled:
            # Exactly the parent's behaviour, not even a log line.
            return super(UploadCloneMixin, self).copy_volume_to_image(
                context, volume, image_service, image_meta)
        start = time.monotonic()
        path, reason, outcome = 'generic copy', None, 'failed'
        timings = []    # (step, seconds) of the decision and clone steps
        try:
            with contextlib.ExitStack() as rados:
                client = None

                def cluster_fsid():
                    # The decision connects when it needs the cluster; the
                    # clone uses the same connection.
                    nonlocal client
                    client = rados.enter_context(
                        rbd_driver.RADOSClient(self))
                    return client.cluster.get_fsid()

                decided = time.monotonic()
                decision = self._upload_decision(context, volume, image_meta,
                                                 cluster_fsid)
                timings.append(('decide', time.monotonic() - decided))
                reason = decision.reason
                if decision.go:
                    path = 'clone'
                    try:
                        detail = self._clone_upload(context, volume,
                                                    image_meta,
                                                    decision.store, client,
                                                    timings)
                        reason = '%s; %s' % (reason, detail)
                        outcome = 'done'
                        return
                    except clone.CloneStepError as e:
                        path = 'generic copy'
                        reason = 'clone path %s; removed what it made' % e
            super(UploadCloneMixin, self).copy_volume_to_image(
                context, volume, image_service, image_meta)
            outcome = 'done'
        finally:
            # Where the time went, once a clone was tried (tools/bench
            # reads `timings`).
            steps = ('; steps: %s' % ', '.join(
                '%s %.2fs' % t for t in timings) if len(timings) > 1 else '')
            LOG.info('Upload of volume %(vol)s to image %(img)s: %(path)s '
                     '%(outcome)s in %(secs).2fs: %(reason)s%(steps)s',
                     {'vol': volume.id, 'img': image_meta['id'],
                      'path': path, 'outcome': outcome, 'reason': reason,
                      'secs': time.monotonic() - start, 'steps': steps,
                      'timings': timings})

    def _clone_upload(self, context, volume, image_meta, store, client,
                      timings=None):
        """Clone, register, wait; on any failure undo and raise.

        :returns: a short description of what was done, for the log.
        :raises clone.CloneStepError: naming the step that failed.
        """
        image_id = image_meta['id']
        with self._in_flight_lock:
            self._uploads_in_flight.add(image_id)
        try:
            return self._do_clone_upload(context, volume, image_id, store,
                                         client, timings)
        finally:
            with self._in_flight_lock:
                self._uploads_in_flight.discard(image_id)

    def _do_clone_upload(self, context, volume, image_id, store, client,
                         timings=None):
        conf = self.configuration
        policy = conf.clone_upload_flatten
        pending = (collector.PENDING_KEY, collector.pending_value(self.host))
        with clone.UploadClone(self, client, volume.name, store.pool,
                               image_id, pending=pending,
                               timings=timings) as upload:
            try:
                depth = upload._run('read clone depth', upload.depth)
                too_deep = depth + 1 > conf.rbd_max_clone_depth
                flatten = too_deep or policy == options.FLATTEN_SYNC
                background = (not flatten and
                              policy == options.FLATTEN_BACKGROUND)
                if background:
                    upload.marks[collector.FLATTEN_KEY] = (
                        collector.pending_value(self.host))
                upload.create(flatten=flatten)
                url = clone.location_url(store.fsid, store.pool, image_id)
                api = upload._run(
                    'register location', location.register, context,
                    image_id, url, conf.clone_upload_allow_legacy_location)
                upload._run('wait for image to become active',
                            location.wait_active, context, image_id,
                            conf.clone_upload_activation_timeout, api)
            except clone.CloneStepError as e:
                if isinstance(e.error, location.ActivationTimeout):
                    # Glance may still use the clone: keep it, marked
                    # pending; the collector removes it unless the image
                    # turns active. No fallback: the image is not ours to
                    # write any more.
                    LOG.error('Clone upload of volume %(vol)s: %(err)s; '
                              'the clone stays for the collector',
                              {'vol': volume.id, 'err': e})
                    raise e.error
                self._rollback(upload, volume)
                if isinstance(e.error, location.ImageGone):
                    # Nothing to upload to: no generic copy either.
                    raise exception.ImageNotFound(image_id=image_id)
                raise
            except Exception as e:
                self._rollback(upload, volume)
                raise clone.CloneStepError('clone upload', e)
            try:
                upload._run('clear pending mark', upload.clear_pending)
            except clone.CloneStepError as e:
                LOG.warning('Image %(img)s is active but its clone keeps '
                            'its pending mark (%(err)s); the collector '
                            'clears it', {'img': image_id, 'err': e.error})

        if background:
            self._start_background_flatten(store.pool, image_id,
                                           volume.name)
        if api == location.LEGACY_API:
            LOG.warning('Image %s was registered through the legacy '
                        'locations call: Glance will not compute its '
                        'checksum or os_hash_value', image_id)
            hashes = 'no checksum (legacy location call)'
        else:
            hashes = 'Glance computes its checksum in the background'
        if too_deep:
            how = ' flattened (clone depth %d)' % (depth + 1)
        elif flatten:
            how = ' flattened (clone_upload_flatten = sync)'
        elif background:
            how = ' flattening in the background'
        else:
            how = ''
        return '%s/%s%s, %s' % (store.pool, image_id, how, hashes)

    @property
    def _flatten_slots(self):
        """Bounds background flattens as the parent bounds its own."""
        if self._flatten_slots_sem is None:
            self._flatten_slots_sem = threading.BoundedSemaphore(
                self.configuration.rbd_concurrent_flatten_operations)
        return self._flatten_slots_sem

    def _start_background_flatten(self, pool, image_id, volume_name):
        with self._in_flight_lock:
            self._flattens_in_flight.add(image_id)
        thread = threading.Thread(target=self._background_flatten,
                                  args=(pool, image_id, volume_name),
                                  daemon=True, name='flatten-%s' % image_id)
        thread.start()
        return thread

    def _background_flatten(self, pool, image_id, volume_name):
        """Flatten one uploaded image, then drop its upload snapshot.

        The snapshot is on volume ``volume_name``, or on the hidden
        ``<volume_name>.deleted`` if the volume was deleted meanwhile. A
        restart in the middle loses nothing: the clone keeps its flatten
        mark until the flatten is done, and the collector finishes it.
        """
        try:
            with self._flatten_slots:
                with rbd_driver.RADOSClient(self) as client:
                    coll = self._collector()
                    coll.flatten_clone(client, pool, image_id)
                    name = self._upload_snapshot_holder(
                        client, volume_name, clone.upload_snap_name(image_id))
                    if name:
                        coll.release_unused_snapshots(client, name)
                        if name.endswith(collector.DELETED_SUFFIX):
                            coll._remove_hidden_volume(client, name)
        except Exception:
            LOG.exception('Background flatten of image %s failed; the '
                          'collector retries it', image_id)
        finally:
            with self._in_flight_lock:
                self._flattens_in_flight.discard(image_id)

    def _upload_snapshot_holder(self, client, volume_name, snap):
        """The volume, or the hidden volume it became, with ``snap``."""
        for name in (volume_name, volume_name + collector.DELETED_SUFFIX):
            try:
                with rbd_driver.RBDVolumeProxy(self, name,
                                               client=client.cluster,
                                               ioctx=client.ioctx,
                                               read_only=True) as vol:
                    if snap in [s['name'] for s in vol.list_snaps()]:
                        return name
            except self.rbd.ImageNotFound:
                pass
        return None

    @staticmethod
    def _rollback(upload, volume):
        failures = upload.rollback()
        if failures:
            LOG.error('Clone upload of volume %(vol)s left RBD objects '
                      'behind (%(what)s); the collector removes them later',
                      {'vol': volume.id,
                       'what': ', '.join(w for w, _e in failures)})

    # Lifecycle: what the uploads leave behind.

    def _collector(self):
        return collector.Collector(self, self._glance_image_status)

    @staticmethod
    def _glance_image_status(image_id):
        """Status of an image as Cinder's service user sees it."""
        ctx = cinder_context.get_admin_context()
        try:
            image = glance.GlanceClientWrapper().call(
                ctx, 'get', image_id, privileged_user=True)
        except glanceclient.exc.HTTPNotFound:
            return None
        return image.get('status')

    def delete_volume(self, volume):
        if self._clone_upload_enabled:
            # Upload snapshots whose images are gone would make the parent
            # keep the volume as a hidden '.deleted' image: drop them first.
            try:
                with rbd_driver.RADOSClient(self) as client:
                    self._collector().release_unused_snapshots(client,
                                                               volume.name)
            except self.rbd.ImageNotFound:
                pass
            except Exception:
                LOG.exception('Could not release upload snapshots of %s '
                              'before deleting it', volume.name)
        return super(UploadCloneMixin, self).delete_volume(volume)

    def collect_upload_leftovers(self, startup=False):
        """One collector sweep of this backend's volumes pool."""
        conf = self.configuration
        counts = self._collector().sweep(
            grace=conf.clone_upload_gc_grace,
            min_age=conf.clone_upload_activation_timeout + 60,
            own_host=self.host if startup else None,
            in_flight=frozenset(self._uploads_in_flight |
                                self._flattens_in_flight))
        if any(counts.values()):
            LOG.info('Upload collector removed %(snapshots)d snapshot(s), '
                     '%(clones)d abandoned clone(s), %(volumes)d hidden '
                     'volume(s); flattened %(flattened)d image(s)', counts)
        return counts

    def _collect_periodically(self):
        first = self._collector_task is not None and not getattr(
            self, '_collector_ran', False)
        self._collector_ran = True
        try:
            self.collect_upload_leftovers(startup=first)
        except Exception:
            LOG.exception('Upload collector sweep failed')

    def check_for_setup_error(self):
        super(UploadCloneMixin, self).check_for_setup_error()
        interval = self.configuration.safe_get('clone_upload_gc_interval')
        if self._clone_upload_enabled and interval:
            LOG.info("Starting upload collector for backend '%s' every %ss",
                     self._backend_name, interval)
            self._collector_task = loopingcall.FixedIntervalLoopingCall(
                self._collect_periodically)
            self._collector_task.start(interval=interval, initial_delay=0)

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
import traceback

from oslo_log import log as logging
from oslo_service import loopingcall
from oslo_utils import units

from cinder import exception
from cinder.i18n import _
from cinder.volume import driver as cinder_driver
from cinder.volume.drivers import rbd as rbd_driver

from cinder_rbd_upload_clone import clone
from cinder_rbd_upload_clone import collector
from cinder_rbd_upload_clone import eligibility
from cinder_rbd_upload_clone import glance_service
from cinder_rbd_upload_clone import image_quota
from cinder_rbd_upload_clone import journal
from cinder_rbd_upload_clone import location
from cinder_rbd_upload_clone import options
from cinder_rbd_upload_clone import stores

LOG = logging.getLogger(__name__)


class UploadCloneMixin(object):
    """Upload RBD volumes to Glance rbd stores as copy-on-write clones."""

    # Seconds between the heartbeats of this process's uploads and
    # flattens in the journal (see journal.owner_gone).
    HEARTBEAT_INTERVAL = 60

    def __init__(self, *args, **kwargs):
        super(UploadCloneMixin, self).__init__(*args, **kwargs)
        self.configuration.append_config_values(options.upload_clone_opts)
        self._store_discovery_cache = None
        # Image ids of the uploads and flattens this process works on. An
        # upload adds its id before it writes its journal record.
        self._in_flight = set()
        self._in_flight_lock = threading.Lock()
        self._process_start = time.time()
        self._collector_task = None
        self._heartbeat_task = None
        self._collector_ran = False

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
        self._stats['clone_upload_enabled'] = self._clone_upload_enabled

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
              'cinder-rbd-upload-clone). Select backends by it with the '
              'volume type extra spec '
              'capabilities:clone_upload_enabled=\'<is> True\'.'),
            'boolean')
        return properties, vendor

    @contextlib.contextmanager
    def _working_on(self, image_id):
        with self._in_flight_lock:
            self._in_flight.add(image_id)
        try:
            yield
        finally:
            with self._in_flight_lock:
                self._in_flight.discard(image_id)

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
            with contextlib.ExitStack() as stack:
                client = upload = None

                def cluster_fsid():
                    # The decision connects when it needs the cluster; the
                    # clone uses the same connection.
                    nonlocal client
                    client = stack.enter_context(
                        rbd_driver.RADOSClient(self))
                    return client.cluster.get_fsid()

                def inspect(store):
                    # The content is judged on the upload snapshot, which
                    # cannot change under the inspection: take it first.
                    nonlocal upload
                    upload = self._begin_upload(stack, client, volume,
                                                store, image_meta['id'],
                                                timings)
                    return upload.inspect(
                        image_meta.get('disk_format'),
                        image_meta.get('container_format'),
                        self.configuration
                        .clone_upload_gpt_safety_checks_nonfatal)

                decided = time.monotonic()
                try:
                    decision = self._upload_decision(
                        context, volume, image_meta, cluster_fsid, inspect)
                except clone.CloneStepError as e:
                    decision = eligibility.Decision(
                        False, 'clone path %s; removed what it made' % e,
                        None)
                timings.append(('decide', time.monotonic() - decided))
                reason = decision.reason
                if decision.go:
                    path = 'clone'
                    try:
                        detail = self._clone_upload(context, volume,
                                                    image_meta['id'],
                                                    decision.store, upload)
                        reason = '%s; %s' % (reason, detail)
                        outcome = 'done'
                        return
                    except clone.CloneStepError as e:
                        path = 'generic copy'
                        reason = 'clone path %s; removed what it made' % e
                    except exception.ImageNotFound:
                        reason = ('%s; the image was deleted during the '
                                  'upload, no generic copy' % reason)
                        raise
                elif upload is not None:
                    # Undone before the copy; if the undo fails there is
                    # no copy, and the line says so.
                    path = 'clone (undo)'
                    self._undo(upload, volume)
                    path = 'generic copy'

            self._generic_copy(context, volume, image_service, image_meta)
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

    def _generic_copy(self, context, volume, image_service, image_meta):
        """The parent's upload, releasing the volume when it fails.

        When Glance refuses the data (a 413 over quota, a 400 from its
        format checks), the parent's copy fails with the volume's librbd
        image still referenced from the exception's frames, and its watch
        keeps the volume from being deleted until a garbage collection
        (seen on the real cloud: "deletion failed", VolumeIsBusy, for
        minutes). Clear those finished frames so the image closes now.
        """
        try:
            return super(UploadCloneMixin, self).copy_volume_to_image(
                context, volume, image_service, image_meta)
        except Exception as e:
            if e.__traceback__ is not None:
                traceback.clear_frames(e.__traceback__.tb_next)
            raise

    def _upload_decision(self, context, volume, image_meta, cluster_fsid,
                         inspect):
        conf = self.configuration
        return eligibility.decide(
            enabled=self._clone_upload_enabled,
            backend=self._backend_name,
            image_meta=image_meta,
            volume=volume,
            find_store=lambda store_id: self._store_discovery.target_store(
                context, store_id),
            cluster_fsid=cluster_fsid,
            quota=lambda: image_quota.check(
                context, volume.size * units.Gi,
                conf.clone_upload_image_size_cap),
            inspect=inspect)

    def _begin_upload(self, stack, client, volume, store, image_id,
                      timings):
        """Own the upload in the journal, then take its snapshot.

        The journal record comes before anything in RBD: whatever this
        upload makes from here on is found by the collector if this
        process dies. The image id is in flight before the record exists.
        """
        policy = self.configuration.clone_upload_flatten
        stack.enter_context(self._working_on(image_id))
        upload = stack.enter_context(clone.UploadClone(
            self, client, volume.name, store.pool, image_id,
            journal=journal.Journal(self.rados, client.ioctx),
            timings=timings))
        upload._run('write journal record', upload.journal.put,
                    journal.new_record(
                        image_id, volume.name, store.pool, self.host,
                        flatten=policy == options.FLATTEN_BACKGROUND))
        try:
            upload.snapshot()
        except clone.CloneStepError:
            self._undo(upload, volume)
            raise
        return upload

    def _clone_upload(self, context, volume, image_id, store, upload):
        """Clone, register, wait; on any failure undo and raise.

        :returns: a short description of what was done, for the log.
        :raises clone.CloneStepError: naming the step that failed; what
            the upload made is removed.
        """
        conf = self.configuration
        policy = conf.clone_upload_flatten
        notes = []
        try:
            depth = upload._run('read clone depth', upload.depth)
            too_deep = depth + 1 > conf.rbd_max_clone_depth

            def flatten():
                if not (too_deep or policy == options.FLATTEN_SYNC):
                    return False
                room, why = upload.flatten_room()
                if room:
                    return True
                if too_deep:
                    raise clone.NoRoom(
                        'clone depth %d needs a flatten, but %s' %
                        (depth + 1, why))
                notes.append('not flattened: %s' % why)
                return False

            # A flattened clone no longer reads through the snapshot:
            # create() releases it.
            flattened = upload.create(flatten=flatten)
            # From here Glance may serve the clone: only while the upload
            # is still this process's (see journal.Journal.hold).
            upload._run('hold journal record', self._hold, upload)
            url = clone.location_url(store.fsid, store.pool, image_id)
            api = upload._run(
                'register location', location.register, context,
                image_id, url, conf.clone_upload_allow_legacy_location)
            upload._run('wait for image to become active',
                        location.wait_active, context, image_id,
                        conf.clone_upload_activation_timeout, api)
        except clone.CloneStepError as e:
            if isinstance(e.error, journal.TakenOver):
                # Not ours any more: its new owner finishes or removes it.
                LOG.error('Clone upload of volume %(vol)s: %(err)s',
                          {'vol': volume.id, 'err': e.error})
                raise e.error
            if isinstance(e.error, location.NotDefinitive):
                # Glance may still use the clone: keep it, with its
                # journal record; the collector settles it. No fallback:
                # the image is not ours to write any more.
                LOG.error('Clone upload of volume %(vol)s: %(err)s; the '
                          'clone stays for the collector',
                          {'vol': volume.id, 'err': e})
                raise e.error
            self._undo(upload, volume)
            if isinstance(e.error, location.ImageGone):
                # Nothing to upload to: no generic copy either.
                raise exception.ImageNotFound(image_id=image_id)
            raise
        except Exception as e:
            self._undo(upload, volume)
            raise clone.CloneStepError('clone upload', e)

        background = False
        if not flattened and policy == options.FLATTEN_BACKGROUND:
            if clone.has_deep_flatten(self, upload.features):
                background = True
            else:
                notes.append('no background flatten: the clone has no '
                             'deep-flatten feature, its snapshot would '
                             'keep the volume as parent')
        # Glance serves the image: the journal owes a background flatten,
        # or nothing.
        settle = (upload.journal.served if background else
                  upload.journal.remove)
        try:
            upload._run('settle journal record', settle, image_id)
        except clone.CloneStepError as e:
            LOG.warning('Image %(img)s is active but its journal record '
                        'stays (%(err)s); the collector settles it',
                        {'img': image_id, 'err': e.error})
        if background:
            self._start_background_flatten(store.pool, image_id,
                                           volume.name)
        if api == location.LEGACY_API:
            LOG.warning('Image %s was registered through the legacy '
                        'locations call: Glance will not compute its '
                        'checksum or os_hash_value', image_id)
            hashes = ('registered through the legacy locations PATCH, no '
                      'checksum')
        else:
            hashes = ('registered through the location API (image API '
                      '2.17), Glance computes its checksum in the '
                      'background')
        if flattened and too_deep:
            how = ' flattened (clone depth %d)' % (depth + 1)
        elif flattened:
            how = ' flattened (clone_upload_flatten = sync)'
        elif background:
            how = ' flattening in the background'
        else:
            how = ''
        return '%s/%s%s, %s%s' % (store.pool, image_id, how, hashes,
                                  ''.join('; ' + n for n in notes))

    def _hold(self, upload):
        """Renew this process's journal record of ``upload``.

        :raises journal.TakenOver: the record is another process's now.
        """
        if not upload.journal.hold(upload.image_id, self.host):
            record = upload.journal.get(upload.image_id)
            raise journal.TakenOver(upload.image_id,
                                    record.host if record else None)

    def _undo(self, upload, volume):
        """Remove what a clone upload made, then its journal record.

        Only while the upload is this process's: the generic copy that
        follows writes the image's name in Glance's pool, where a new
        owner would remove the clone.

        :raises journal.TakenOver: another process owns the upload now;
            nothing is removed.
        :raises exception.VolumeBackendAPIException: when something could
            not be removed, or the journal could not be read: the generic
            copy would then meet the clone in Glance's pool, and the
            record stays for the collector.
        """
        try:
            self._hold(upload)
        except journal.TakenOver as e:
            LOG.error('Clone upload of volume %(vol)s: %(err)s',
                      {'vol': volume.id, 'err': e})
            raise
        except Exception as e:
            LOG.error('Clone upload of volume %(vol)s cannot tell whether '
                      'it still owns image %(img)s (%(err)s); what it made '
                      'stays for the collector',
                      {'vol': volume.id, 'img': upload.image_id, 'err': e})
            raise exception.VolumeBackendAPIException(
                data='clone upload of volume %s could not read its journal '
                     'record (%s); no generic copy' % (volume.id, e))
        failures = upload.rollback()
        if failures:
            LOG.error('Clone upload of volume %(vol)s left RBD objects '
                      'behind (%(what)s); the collector removes them later',
                      {'vol': volume.id,
                       'what': ', '.join(w for w, _e in failures)})
            raise exception.VolumeBackendAPIException(
                data='clone upload of volume %s could not remove what it '
                     'made (%s); no generic copy' % (
                         volume.id, ', '.join(w for w, _e in failures)))
        try:
            upload.journal.remove(upload.image_id)
        except Exception as e:
            LOG.warning('Could not drop the journal record of image '
                        '%(img)s (%(err)s); the collector does',
                        {'img': upload.image_id, 'err': e})

    # Background flatten.

    def _start_background_flatten(self, pool, image_id, volume_name):
        with self._in_flight_lock:
            self._in_flight.add(image_id)
        thread = threading.Thread(target=self._background_flatten,
                                  args=(pool, image_id, volume_name),
                                  daemon=True, name='flatten-%s' % image_id)
        thread.start()
        return thread

    def _background_flatten(self, pool, image_id, volume_name):
        """Flatten one uploaded image, then drop its upload snapshot.

        A restart in the middle loses nothing: the journal keeps the
        flatten owed until it is done, and the collector finishes it.
        """
        try:
            with rbd_driver.RADOSClient(self) as client:
                jrnl = journal.Journal(self.rados, client.ioctx)
                record = jrnl.get(image_id)
                if record is None or record.state != journal.FLATTEN:
                    return
                if not jrnl.hold(image_id, self.host):
                    LOG.warning('Background flatten of image %s was taken '
                                'over by another process; left to it',
                                image_id)
                    return
                self._collector().finish_flatten(client, jrnl, record)
        except Exception:
            LOG.exception('Background flatten of image %s failed; the '
                          'collector retries it', image_id)
        finally:
            with self._in_flight_lock:
                self._in_flight.discard(image_id)

    # Lifecycle: what the uploads leave behind.

    def _collector(self, sees_all=False):
        return collector.Collector(self, glance_service.image_state,
                                   sees_all)

    def _is_gone(self, record):
        with self._in_flight_lock:
            in_flight = set(self._in_flight)
        return journal.owner_gone(record, self.host, in_flight,
                                  self._process_start,
                                  self.configuration.clone_upload_gc_grace)

    def delete_volume(self, volume):
        if not self._clone_upload_enabled:
            return super(UploadCloneMixin, self).delete_volume(volume)
        parent = None
        try:
            with rbd_driver.RADOSClient(self) as client:
                # Upload snapshots whose images are gone would make the
                # parent keep the volume as a hidden '.deleted' image.
                jrnl = journal.Journal(self.rados, client.ioctx)
                coll = self._collector()
                coll.release_unused_snapshots(
                    client, volume.name, busy=frozenset(jrnl.records()))
                if self.configuration.clone_upload_reclaim_hidden_volumes:
                    parent = coll.clone_parent(client, volume.name)
        except self.rbd.ImageNotFound:
            pass
        except Exception:
            LOG.exception('Could not release upload snapshots of %s '
                          'before deleting it', volume.name)
        result = super(UploadCloneMixin, self).delete_volume(volume)
        if parent:
            try:
                with rbd_driver.RADOSClient(self) as client:
                    self._collector().release_clone_parent(
                        client, volume.name, *parent)
            except Exception:
                LOG.exception('Could not release the clone parent of %s; '
                              'the collector reclaims it', volume.name)
        return result

    def collect_upload_leftovers(self):
        """One collector sweep of this backend's volumes pool."""
        sees_all, why = glance_service.sees_all_images()
        if not sees_all:
            LOG.warning('Upload collector of backend %(backend)s cannot '
                        'tell deleted images from hidden ones (%(why)s): it '
                        'removes no clone on a 404 from Glance',
                        {'backend': self._backend_name, 'why': why})
        conf = self.configuration
        counts = self._collector(sees_all).sweep(
            is_gone=self._is_gone,
            min_age=conf.clone_upload_activation_timeout + 60,
            reclaim=conf.clone_upload_reclaim_hidden_volumes)
        if any(v for k, v in counts.items() if k != 'kept'):
            LOG.info('Upload collector removed %(snapshots)d snapshot(s), '
                     '%(clones)d abandoned clone(s), %(volumes)d hidden '
                     'volume(s); reclaimed %(reclaimed)d hidden volume(s) '
                     'left by the RBD driver; flattened %(flattened)d '
                     'image(s); settled %(served)d served upload(s); kept '
                     '%(kept)d', counts)
        return counts

    def _collect_periodically(self):
        try:
            self.collect_upload_leftovers()
        except Exception:
            LOG.exception('Upload collector sweep failed')

    def _heartbeat(self):
        """Tell the journal this process still works on its uploads."""
        with self._in_flight_lock:
            in_flight = set(self._in_flight)
        if not in_flight:
            return
        try:
            with rbd_driver.RADOSClient(self) as client:
                journal.Journal(self.rados, client.ioctx).beat(in_flight,
                                                               self.host)
        except Exception:
            LOG.exception('Upload journal heartbeat failed')

    def check_for_setup_error(self):
        super(UploadCloneMixin, self).check_for_setup_error()
        if not self._clone_upload_enabled:
            return
        self._heartbeat_task = loopingcall.FixedIntervalLoopingCall(
            self._heartbeat)
        self._heartbeat_task.start(interval=self.HEARTBEAT_INTERVAL,
                                   initial_delay=self.HEARTBEAT_INTERVAL)
        interval = self.configuration.safe_get('clone_upload_gc_interval')
        if interval:
            LOG.info("Starting upload collector for backend '%s' every %ss",
                     self._backend_name, interval)
            self._collector_task = loopingcall.FixedIntervalLoopingCall(
                self._collect_periodically)
            self._collector_task.start(interval=interval, initial_delay=0)

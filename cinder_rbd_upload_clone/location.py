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

"""Register a clone as a Glance image's location and wait for it to serve.

The clone is registered through Glance's service-only location API
(``POST /v2/images/{id}/locations``, image API 2.17). Glance then makes the
image active, sets its size from the store, and computes ``checksum`` and
``os_hash_value`` in the background by reading the clone. That API needs
the ``service`` role: either the user's token with a service token from
``[service_user]`` (``send_service_user_token = True``), or Cinder's
``[glance]`` service credentials when that user may see the image (on
Cinder 26, which has no ``[glance]`` section, glance_client.py's). The
legacy ``PATCH /locations`` call, which needs ``show_multiple_locations``
and never computes hashes, is used only when the deployer allows it.
"""

import time

import glanceclient.exc
from oslo_config import cfg
from oslo_log import log as logging

from cinder_rbd_upload_clone import glance_client

LOG = logging.getLogger(__name__)
CONF = cfg.CONF

LOCATION_API = 'location API'
LEGACY_API = 'legacy locations PATCH'
IMPORT_LOCK = 'os_glance_import_task'
# Glance serves the image (deactivated: it did, an admin paused it).
SERVED = ('active', 'deactivated')
# Glance may still make the image served with the location.
IN_PROGRESS = ('queued', 'saving', 'importing', 'uploading')


class LocationError(Exception):
    """The location could not be registered; str() is the reason."""


class ImageGone(LocationError):
    """The image was deleted while the upload ran: nothing to upload to."""


class NotDefinitive(LocationError):
    """Glance may still use the clone: it must not be removed.

    The upload fails without a fallback (the image is not ours to write
    any more) and the journal keeps its record for the collector.
    """


class ActivationTimeout(NotDefinitive):
    """Glance took the location but did not finish in time."""


def _code(e):
    return getattr(e, 'code', None) or type(e).__name__


def _attempts():
    """(description, privileged_user) pairs, least privilege first."""
    attempts = []
    if CONF.service_user.send_service_user_token:
        attempts.append(('user token with service token', False))
    attempts.append(("Cinder's [glance] service credentials", True))
    return attempts


def register(context, image_id, url, allow_legacy=False):
    """Add ``url`` as the location of queued image ``image_id``.

    :returns: which API registered it (:data:`LOCATION_API` or
        :data:`LEGACY_API`).
    :raises LocationError: with the reason, when no call succeeded.
    """
    client = glance_client.wrapper()
    refusals = []
    for who, privileged in _attempts():
        try:
            client.call(context, 'add_image_location', image_id, url, {},
                        privileged_user=privileged)
            LOG.debug('Glance took the location of image %(img)s through '
                      'the location API with the %(who)s',
                      {'img': image_id, 'who': who})
            return LOCATION_API
        except glanceclient.exc.HTTPNotImplemented:
            break
        except glanceclient.exc.HTTPNotFound as e:
            if not privileged:
                # The user owns the image: not found means deleted.
                raise ImageGone('image %s was deleted during the upload' %
                                image_id)
            refusals.append('%s: %s' % (who, _code(e)))
        except (glanceclient.exc.HTTPForbidden,
                glanceclient.exc.HTTPUnauthorized) as e:
            refusals.append('%s: %s' % (who, _code(e)))
        except Exception as e:
            http = isinstance(e, glanceclient.exc.HTTPException)
            code = getattr(e, 'code', None) if http else None
            if code and code < 500 and code != 409:
                # Glance checks these before it changes anything.
                raise LocationError('the location API refused it: %s' %
                                    _code(e))
            # A 409 (a retry of a call that reached Glance meets the
            # image it already took), a 5xx, Glance unreachable, a lost
            # answer: the call may have reached Glance. Removing the
            # clone needs proof that Glance did not take it.
            if _took_location(client, context, image_id, url):
                LOG.info('Location call for image %(img)s ended with '
                         '%(err)s, but Glance took the location',
                         {'img': image_id, 'err': _code(e)})
                return LOCATION_API
            raise LocationError('the location API failed (%s) and Glance '
                                'did not take the location' % (
                                    _code(e) if http else '%s: %s' % (
                                        type(e).__name__, e)))
    else:
        raise LocationError(
            'Glance refused the location API (%s); it needs the service '
            'role: set [service_user] send_service_user_token with a user '
            'holding the service role' % '; '.join(refusals))

    if not allow_legacy:
        raise LocationError(
            'Glance has no location API (image API 2.17) and '
            'clone_upload_allow_legacy_location is off')
    try:
        client.call(context, 'add_location', image_id, url, {})
    except Exception as e:
        raise LocationError('the legacy locations PATCH failed (it needs '
                            'show_multiple_locations in Glance): %s' %
                            _code(e))
    return LEGACY_API


def _read_image(client, context, image_id):
    """The image as its owner sees it; ImageGone when it was deleted."""
    try:
        return client.call(context, 'get', image_id)
    except glanceclient.exc.HTTPNotFound:
        raise ImageGone('image %s was deleted during the upload' % image_id)


def _took_location(client, context, image_id, url, settle=(0.5, 1.0, 2.0)):
    """After a location call that failed unclearly: did Glance take it?

    Glance takes a location by locking the image for its location import
    task before it answers; the task adds the location, makes the image
    active and drops the lock (or, when it fails, drops the location and
    the lock and gives the image back queued). So:

    * ``url`` among the image's locations (read with the service role),
      or the import lock on the image: taken;
    * the image served, its locations readable and ``url`` not among
      them: Glance serves something else, not the clone;
    * the image queued, unlocked, ``url`` not among its locations, still
      so after ``settle`` seconds (the call may be on its way through
      Glance): not taken.

    :raises NotDefinitive: when Glance cannot be asked, or the image is
        served and its locations cannot be read: the clone must stay.
    :raises ImageGone: when the image was deleted.
    """
    error = None
    for delay in (0,) + tuple(settle):
        time.sleep(delay)
        try:
            image = _read_image(client, context, image_id)
        except ImageGone:
            raise
        except Exception as e:
            error = e
            continue
        error = None
        if image.get(IMPORT_LOCK):
            return True
        locations = _locations(client, context, image_id)
        if locations is not None and url in locations:
            return True
        if image.get('status') != 'queued':
            if locations is None:
                raise NotDefinitive(
                    'image %s is %s and its locations cannot be read: '
                    'Glance may serve the clone' % (image_id,
                                                    image.get('status')))
            return False
    if error is not None:
        raise NotDefinitive(
            'Glance did not say whether it took the location of image %s '
            '(%s)' % (image_id, _code(error)))
    return False


def _locations(client, context, image_id):
    """URLs of the image's locations (service role); None if unreadable."""
    try:
        # glanceclient gives the list (wrapped with its request id).
        locations = client.call(context, 'get_image_locations', image_id,
                                privileged_user=True)
    except Exception as e:
        LOG.debug('Cannot list the locations of image %(img)s: %(err)s',
                  {'img': image_id, 'err': _code(e)})
        return None
    return [loc.get('url') for loc in locations or ()
            if isinstance(loc, dict)]


def wait_active(context, image_id, timeout, api=LOCATION_API, interval=0.1,
                fast_for=3.0, slow_interval=0.5):
    """Wait until Glance serves the image; return it.

    Glance's location API locks the image for its location import task
    before it answers the POST, and the task drops the lock only after the
    image is active, or after it failed and gave the image back queued. So
    after :data:`LOCATION_API` a queued image without the lock means the
    task failed, even on the first read.

    :param api: what :func:`register` returned.
    :param interval: seconds between reads during the first ``fast_for``
        seconds (Glance usually activates within half a second: a read
        every 0.1 s costs little and notices it at once), then
        ``slow_interval``.
    :raises LocationError: when Glance dropped the location (its import
        task failed) or the image went away.
    :raises ActivationTimeout: when ``timeout`` passed, reads failing
        meanwhile included: Glance may still use the location.
    """
    client = glance_client.wrapper()
    start = time.monotonic()
    deadline = start + timeout
    seen_lock = api == LOCATION_API
    while True:
        try:
            image = _read_image(client, context, image_id)
        except ImageGone:
            raise
        except Exception as e:
            # Glance has the location: a failed read (Glance restarting,
            # a 500) says nothing about the image. Keep asking until the
            # deadline; the clone must stay while Glance may use it.
            LOG.debug('Reading image %(img)s failed (%(err)s); retrying',
                      {'img': image_id, 'err': e})
            status = 'unreadable (%s)' % _code(e)
        else:
            status = image.get('status')
            if status in SERVED:
                return image
            if status == 'pending_delete':
                # Deleted with Glance's delayed delete: its scrubber owns
                # the location's data now (and an operator may restore
                # the image).
                raise NotDefinitive('image %s was deleted while Glance '
                                    'held the location (pending_delete)'
                                    % image_id)
            if status not in IN_PROGRESS:
                raise LocationError('image %s became %s' % (image_id,
                                                            status))
            if image.get(IMPORT_LOCK):
                seen_lock = True
            elif seen_lock and status == 'queued':
                raise LocationError(
                    'Glance could not use the location (its location '
                    'import task failed; see glance-api log); image %s is '
                    'still queued' % image_id)
        if time.monotonic() >= deadline:
            raise ActivationTimeout('image %s is still %s after %ss' %
                                    (image_id, status, timeout))
        time.sleep(interval if time.monotonic() - start < fast_for
                   else slow_interval)

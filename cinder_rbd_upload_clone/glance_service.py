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

"""How the driver reaches Glance as Cinder's service user, and what it sees.

Background work (the collector, the doctor) has no user request: it calls
Glance with Cinder's ``[glance]`` service credentials. Cinder finds Glance
either in ``glance_api_servers`` or, by default, in the service catalog of
the request's context; an admin context made in the background has no
catalog, so :func:`service_context` gives it the one of the ``[glance]``
user, in the form Cinder's own contexts carry.

A ``404`` from Glance means "deleted" only when the caller can see every
project's images; :func:`sees_all_images` tells whether the ``[glance]``
user can (it holds the ``admin`` role, which Glance's default policy lets
read every image). The collector removes nothing on a 404 otherwise.
"""

import collections

import glanceclient.exc
from keystoneauth1 import loading as ks_loading
from oslo_config import cfg
from oslo_log import log as logging

from cinder import context as cinder_context

from cinder_rbd_upload_clone import glance_client

LOG = logging.getLogger(__name__)
CONF = cfg.CONF

IMPORT_LOCK = 'os_glance_import_task'

ImageState = collections.namedtuple('ImageState', 'status locked')
# status None: Glance answered 404.


def _glance_session():
    # Cinder 27+ registers [glance]; on Cinder 26 glance_client does.
    auth = ks_loading.load_auth_from_conf_options(
        CONF, glance_client.GLANCE_GROUP)
    sess = ks_loading.load_session_from_conf_options(
        CONF, glance_client.GLANCE_GROUP, auth=auth)
    return auth, sess


def service_context():
    """An admin context that finds Glance as cinder-volume does."""
    ctx = cinder_context.get_admin_context()
    if CONF.glance_api_servers is None:
        auth, sess = _glance_session()
        catalog = []
        for entry in auth.get_access(sess).service_catalog.catalog:
            endpoints = [{'region': ep.get('region_id') or ep.get('region'),
                          '%sURL' % ep['interface']: ep['url']}
                         for ep in entry.get('endpoints', [])]
            catalog.append({'type': entry['type'], 'endpoints': endpoints})
        ctx.service_catalog = catalog
    return ctx


def glance_roles():
    """Role names of Cinder's ``[glance]`` user."""
    auth, sess = _glance_session()
    return set(auth.get_access(sess).role_names)


def sees_all_images():
    """(bool, reason): may a 404 for this user be taken as 'deleted'?"""
    try:
        roles = glance_roles()
    except Exception as e:
        return False, ('cannot read the roles of the [glance] user: %s: %s'
                       % (type(e).__name__, e))
    if 'admin' in roles:
        return True, "the [glance] user holds the admin role"
    return False, ("the [glance] user has roles %s, not admin: Glance hides "
                   "other projects' private images from it, so a 404 does "
                   "not prove an image is deleted" %
                   (', '.join(sorted(roles)) or 'none'))


def image_state(image_id, context=None):
    """The image as Cinder's service user sees it.

    :returns: :class:`ImageState`; ``status`` is None on a 404.
    :raises: whatever the Glance call raises otherwise (nothing is known).
    """
    ctx = context or service_context()
    try:
        image = glance_client.wrapper().call(
            ctx, 'get', image_id, privileged_user=True)
    except glanceclient.exc.HTTPNotFound:
        return ImageState(None, False)
    return ImageState(image.get('status'), bool(image.get(IMPORT_LOCK)))

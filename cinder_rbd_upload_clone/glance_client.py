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

"""Cinder's Glance client wrapper, with ``privileged_user`` on every Cinder.

Glance's service-only APIs (stores detail, the location API and the
location list) need Cinder's own service credentials: the ``[glance]``
keystoneauth section, selected by ``GlanceClientWrapper.call(...,
privileged_user=True)``. Both came with Cinder 27 (2025.2); on Cinder 27
and later :func:`wrapper` is Cinder's own wrapper.

Cinder 26 (2025.1) has neither (``compat.GLANCE_PRIVILEGED_CALLS`` is
False): there this module registers the ``[glance]`` options exactly as
Cinder 27's ``cinder/image/glance.py`` does, and :func:`wrapper` is Cinder
26's wrapper (its retries, its endpoints from ``glance_api_servers`` or
the catalog) whose privileged calls get the client Cinder 27's
``_create_glance_client(..., privileged_user=True)`` builds: the
``[glance]`` auth plugin, wrapped with a ``[service_user]`` service token
when ``send_service_user_token`` is set, on Cinder's Glance session.
Nothing of Cinder is changed: only this package's calls use it.
"""

import glanceclient
from keystoneauth1 import loading as ks_loading
from keystoneauth1.loading import session as ks_session
from oslo_config import cfg
from oslo_log import log as logging

from cinder import service_auth

# image_utils first: importing cinder.image.glance on its own hits a cycle
# between the two modules.
from cinder.image import image_utils  # noqa: F401
from cinder.image import glance  # noqa: H306

from cinder_rbd_upload_clone import compat

LOG = logging.getLogger(__name__)
CONF = cfg.CONF

GLANCE_GROUP = 'glance'


def register_opts(conf=CONF):
    """The ``[glance]`` keystoneauth options, where Cinder has none.

    Cinder 27+ registers them itself (``cinder.image.glance``), with these
    same option lists.
    """
    if compat.GLANCE_PRIVILEGED_CALLS:
        return
    conf.register_opts(ks_loading.get_session_conf_options(),
                       group=GLANCE_GROUP)
    conf.register_opts(ks_loading.get_auth_common_conf_options(),
                       group=GLANCE_GROUP)


register_opts()


def create_privileged_client(context, netloc, use_ssl):
    """Cinder 27's ``_create_glance_client`` with ``privileged_user``.

    Only used on Cinder 26, whose ``_create_glance_client`` has no
    ``privileged_user``; the same steps, on Cinder 26's session.
    """
    params = {'global_request_id': context.global_id}
    g_auth = None
    if CONF[GLANCE_GROUP].auth_type:
        LOG.debug('Creating Keystone auth plugin from conf')
        g_auth = ks_loading.load_auth_from_conf_options(CONF, GLANCE_GROUP)
    if use_ssl and CONF.auth_strategy == 'noauth':
        params = {'insecure': CONF.glance_api_insecure,
                  'cacert': CONF.glance_ca_certificates_file,
                  'timeout': CONF.glance_request_timeout,
                  'split_loggers': CONF.split_loggers}
    if CONF.auth_strategy == 'keystone':
        if not glance._SESSION:
            glance._SESSION = ks_session.Session().load_from_options(
                insecure=CONF.glance_api_insecure,
                cacert=CONF.glance_ca_certificates_file,
                timeout=CONF.glance_request_timeout,
                cert=CONF.glance_certfile,
                key=CONF.glance_keyfile,
                split_loggers=CONF.split_loggers)
        params['auth'] = service_auth.get_auth_plugin(context, auth=g_auth)
        params['session'] = glance._SESSION
    scheme = 'https' if use_ssl else 'http'
    return glanceclient.Client('2', '%s://%s' % (scheme, netloc), **params)


class BackportClientWrapper(glance.GlanceClientWrapper):
    """Cinder 26's wrapper whose ``call`` takes ``privileged_user``.

    One wrapper serves one thread (as Cinder's, made per use).
    """

    _privileged = False

    def call(self, context, method, *args, **kwargs):
        self._privileged = kwargs.pop('privileged_user', False)
        return super(BackportClientWrapper, self).call(
            context, method, *args, **kwargs)

    def _create_onetime_client(self, context, *args):
        if not self._privileged:
            return super(BackportClientWrapper,
                         self)._create_onetime_client(context, *args)
        if self.api_servers is None:
            self.api_servers = glance.get_api_servers(context)
        self.netloc, self.use_ssl = next(self.api_servers)
        return create_privileged_client(context, self.netloc, self.use_ssl)


def wrapper():
    """A Glance client wrapper whose ``call`` takes ``privileged_user``."""
    if compat.GLANCE_PRIVILEGED_CALLS:
        return glance.GlanceClientWrapper()
    return BackportClientWrapper()

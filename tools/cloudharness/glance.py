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

"""glance-api under gunicorn, rbd store on the `images` pool, MariaDB;
optionally with Keystone unified limits (image quota)."""

import os

from cloudharness import database
from cloudharness import keystone
from cloudharness import processes
from cloudharness import settings as s
from cloudharness import util

CONF = os.path.join(s.GL_DIR, 'glance-api.conf')


def write_config(limits_endpoint=None):
    """Write glance-api.conf; True if it changed.

    With limits_endpoint (Glance's endpoint id in Keystone), quotas come
    from Keystone's unified limits.
    """
    with open(os.path.join(s.VENV, 'etc', 'glance',
                           'glance-api-paste.ini')) as f:
        paste = f.read()
    changed = util.write_file(os.path.join(s.GL_DIR, 'glance-api-paste.ini'),
                              paste)
    for d in ('staging', 'tasks', 'locks'):
        os.makedirs(os.path.join(s.GL_DIR, d), exist_ok=True)
    sections = {
        'DEFAULT': {'debug': 'False', 'use_stderr': 'True',
                    'bind_host': s.HOST, 'bind_port': s.GLANCE_PORT,
                    'workers': '1',
                    'enabled_backends': 'ceph:rbd',
                    'worker_self_reference_url': s.GLANCE_URL},
        'database': {'connection': database.url('glance')},
        'glance_store': {'default_backend': 'ceph'},
        'ceph': {'rbd_store_pool': 'images', 'rbd_store_user': 'glance',
                 'rbd_store_ceph_conf': s.CEPH_CONF,
                 'rbd_store_chunk_size': '8',
                 'store_description': 'Ceph RBD, pool images'},
        'os_glance_staging_store': {
            'filesystem_store_datadir': os.path.join(s.GL_DIR, 'staging')},
        'os_glance_tasks_store': {
            'filesystem_store_datadir': os.path.join(s.GL_DIR, 'tasks')},
        # Every MBR/GPT safety check fatal, as Glance 33 (2026.2) has it by
        # default: Glance 30-32 default to 'mbr' (non-fatal). The driver's
        # clone_upload_gpt_safety_checks_nonfatal mirrors this (default
        # empty), and the parity tests expect Glance to refuse an unsafe
        # partition table, on every release.
        'image_format': {'gpt_safety_checks_nonfatal': ''},
        'keystone_authtoken': keystone.authtoken_section('glance'),
        'paste_deploy': {'flavor': 'keystone'},
        'oslo_concurrency': {'lock_path': os.path.join(s.GL_DIR, 'locks')},
    }
    if limits_endpoint:
        sections['DEFAULT']['use_keystone_limits'] = 'True'
        # the glance user, with reader on system scope (image_limits())
        sections['oslo_limit'] = {
            'auth_url': s.KEYSTONE_URL, 'auth_type': 'password',
            'user_domain_id': 'default', 'username': 'glance',
            'password': s.PASSWORDS['glance'], 'system_scope': 'all',
            'endpoint_id': limits_endpoint, 'region_name': s.REGION}
    return util.write_file(CONF, util.ini(sections)) or changed


def db(note):
    if os.path.exists(os.path.join(s.GL_DIR, 'db-synced')):
        note.append('already synced')
        return
    database.server_db(note, 'glance', lambda: util.run(
        [os.path.join(s.VBIN, 'glance-manage'), '--config-file', CONF,
         'db_sync'], timeout=300))
    util.touch(os.path.join(s.GL_DIR, 'db-synced'))


def start(note, restart):
    env = util.base_env()
    env['OS_GLANCE_CONFIG_DIR'] = s.GL_DIR
    processes.ensure('glance-api', note, keystone.gunicorn_cmd(
        'glance.wsgi.api:application', s.GLANCE_PORT, 8), env=env,
        cwd=s.GL_DIR, restart=restart)


def wait(note):
    util.wait_until(util.http_ok(s.GLANCE_URL + '/versions'), 90,
                    'glance-api', 'glance-api')


def usage(token):
    """GET /v2/info/usage: the project's image quotas and usage."""
    st, _, js = util.http('GET', s.GLANCE_URL + '/v2/info/usage',
                          token=token)
    if st != 200:
        raise util.Fail('glance /v2/info/usage: %s %s' % (st, js),
                        'glance-api')
    return js['usage']

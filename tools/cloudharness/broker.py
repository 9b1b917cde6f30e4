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

"""Message broker: Debian's RabbitMQ as a plain process (no systemd)."""

import os
import uuid

from cloudharness import processes
from cloudharness import settings as s
from cloudharness import util


def env():
    e = util.base_env()
    e.update({
        'HOME': s.RMQ_DIR,
        'RABBITMQ_NODENAME': 'rabbit@localhost',
        'RABBITMQ_NODE_IP_ADDRESS': s.HOST,
        'RABBITMQ_NODE_PORT': str(s.RABBIT_PORT),
        'RABBITMQ_DIST_PORT': str(s.RABBIT_DIST_PORT),
        'RABBITMQ_MNESIA_BASE': os.path.join(s.RMQ_DIR, 'mnesia'),
        'RABBITMQ_LOG_BASE': os.path.join(s.LOGS, 'rabbitmq'),
        'RABBITMQ_CONFIG_FILE': os.path.join(s.RMQ_DIR, 'rabbitmq.conf'),
        'RABBITMQ_ENABLED_PLUGINS_FILE': os.path.join(s.RMQ_DIR,
                                                      'enabled_plugins'),
        'RABBITMQ_CONF_ENV_FILE': os.path.join(s.RMQ_DIR,
                                               'rabbitmq-env.conf'),
        'RABBITMQ_PID_FILE': os.path.join(s.RMQ_DIR, 'rabbit.pid'),
        'RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS':
            '-kernel inet_dist_use_interface {127,0,0,1}',
        'ERL_EPMD_ADDRESS': s.HOST,
    })
    return e


def rabbitmqctl(*args, timeout=60, check=True):
    return util.run(['/usr/lib/rabbitmq/bin/rabbitmqctl', '-n',
                     'rabbit@localhost'] + list(args), env=env(),
                    timeout=timeout, check=check, service='rabbitmq')


def start(note):
    os.makedirs(os.path.join(s.LOGS, 'rabbitmq'), exist_ok=True)
    util.write_file(os.path.join(s.RMQ_DIR, 'rabbitmq.conf'), '\n'.join([
        'listeners.tcp.default = %s:%d' % (s.HOST, s.RABBIT_PORT),
        # created on the node's first boot only
        'default_user = %s' % s.RABBIT_USER,
        'default_pass = %s' % s.RABBIT_PASS,
        'default_vhost = /',
        'default_permissions.configure = .*',
        'default_permissions.read = .*',
        'default_permissions.write = .*',
        'disk_free_limit.absolute = 50MB',
        'log.console = false',
        'log.file.level = info', '']))
    util.write_file(os.path.join(s.RMQ_DIR, 'enabled_plugins'), '[].\n')
    util.write_file(os.path.join(s.RMQ_DIR, 'rabbitmq-env.conf'), '')
    if processes.alive('rabbitmq'):
        note.append('running')
        return
    cookie = os.path.join(s.RMQ_DIR, '.erlang.cookie')
    if not os.path.exists(cookie):
        util.write_file(cookie, uuid.uuid4().hex, 0o400)
    processes.spawn('rabbitmq', ['/usr/lib/rabbitmq/bin/rabbitmq-server'],
                    env=env(), cwd=s.RMQ_DIR)
    note.append('started (waited for later)')


def wait(note):
    util.wait_until(lambda: util.port_open(s.RABBIT_PORT), 90,
                    'AMQP port %d' % s.RABBIT_PORT, 'rabbitmq')
    note.append('listening on %s:%d' % (s.HOST, s.RABBIT_PORT))


def has_queue(prefix):
    r = rabbitmqctl('-q', 'list_queues', 'name', timeout=30, check=False)
    return r.returncode == 0 and prefix in r.stdout


def stop_epmd():
    """The broker started epmd; it outlives the broker unless told."""
    import shutil
    if shutil.which('epmd'):
        e = util.base_env()
        e['ERL_EPMD_ADDRESS'] = s.HOST
        util.run(['epmd', '-kill'], env=e, check=False, timeout=10)

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

"""Where everything lives and the fixed settings of the local cloud.

Every piece of state is under <repo>/.cloud (git-ignored); the venv is
<repo>/.venv for the newest release, <repo>/.venv-<release> for the others
(RELEASES). All services bind 127.0.0.1 on fixed ports.
"""

import os

# Layout -------------------------------------------------------------------
REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
CLOUD = os.path.join(REPO, '.cloud')
VENV = os.path.join(REPO, '.venv')
VBIN = os.path.join(VENV, 'bin')
VPY = os.path.join(VBIN, 'python')
PIDS = os.path.join(CLOUD, 'pids')
LOGS = os.path.join(CLOUD, 'logs')
# Free host disk `up` insists on (the OSD's sparse block file, the mon
# store and the logs of a full demo and test run take about 4 GiB).
MIN_FREE_BYTES = int(float(os.environ.get('CLOUD_MIN_FREE_GIB', '5'))
                     * (1 << 30))
# Ceph daemons write their own log besides what they print.
DAEMON_LOGS = {'ceph-mon': 'ceph-mon.a.log', 'ceph-mgr': 'ceph-mgr.x.log',
               'ceph-osd': 'ceph-osd.0.log'}
CEPH_CONF = os.path.join(CLOUD, 'ceph.conf')
CEPH_DIR = os.path.join(CLOUD, 'ceph')
MON_DATA = os.path.join(CEPH_DIR, 'mon', 'ceph-a')
MGR_DATA = os.path.join(CEPH_DIR, 'mgr', 'ceph-x')
OSD_DATA = os.path.join(CEPH_DIR, 'osd', 'ceph-0')
RMQ_DIR = os.path.join(CLOUD, 'rabbitmq')
KS_DIR = os.path.join(CLOUD, 'keystone')
GL_DIR = os.path.join(CLOUD, 'glance')
CI_DIR = os.path.join(CLOUD, 'cinder')
DB_DIR = os.path.join(CLOUD, 'mariadb')
DB_SOCKET = os.path.join(DB_DIR, 'mariadb.sock')
ETC_CEPH = os.path.join(CLOUD, 'etc-ceph')
ETCD_DIR = os.path.join(CLOUD, 'etcd')
# Set in the environment of every process we start: how `down` finds
# strays whose pid file was lost.
MARK = 'CLOUD_HARNESS_DIR'

# Network ------------------------------------------------------------------
HOST = '127.0.0.1'
MON_PORT = 6790
RABBIT_PORT = 5672
RABBIT_DIST_PORT = 25672
KEYSTONE_PORT = 5000
GLANCE_PORT = 9292
CINDER_PORT = 8776
DB_PORT = 13306  # not 3306: leave a system MariaDB/MySQL alone
ETCD_PORT = 2379
ETCD_PEER_PORT = 2380
KEYSTONE_URL = 'http://%s:%d' % (HOST, KEYSTONE_PORT)
AUTH_URL = KEYSTONE_URL + '/v3'
GLANCE_URL = 'http://%s:%d' % (HOST, GLANCE_PORT)
CINDER_URL = 'http://%s:%d' % (HOST, CINDER_PORT)
REGION = 'RegionOne'

# Loopback-only development credentials ------------------------------------
ADMIN_PASSWORD = 'admin'
PASSWORDS = {'cinder': 'cinder', 'glance': 'glance', 'demo': 'demo'}
RABBIT_USER, RABBIT_PASS = 'openstack', 'openstack'
DB_USER, DB_PASS = 'openstack', 'openstack'
RBD_SECRET_UUID = '4b5fd580-360c-4f8c-abb5-c83bb9a3f964'

# Cinder backends ----------------------------------------------------------
# rbd-clone: the clone upload as shipped (clone_upload_flatten = never);
# rbd-flatten: the same with clone_upload_flatten = background;
# rbd-generic: enable_clone_optimization off, i.e. upstream's upload.
BACKENDS = ('rbd-clone', 'rbd-flatten', 'rbd-generic')
VOLUME_TYPES = {'clone': 'rbd-clone', 'clone-flatten': 'rbd-flatten',
                'generic': 'rbd-generic'}
FLATTEN_POLICY = {'rbd-flatten': 'background'}
DEFAULT_DRIVER = 'cinder_rbd_upload_clone.driver.RBDUploadCloneDriver'
UPSTREAM_DRIVER = 'cinder.volume.drivers.rbd.RBDDriver'
VOLUME_API_VERSION = '3.1'

# Ceph ---------------------------------------------------------------------
OSD_STORES = ('bluestore', 'memstore')
DEFAULT_OSD_STORE = 'bluestore'
GiB = 1 << 30
# bluestore: a sparse file .cloud/ceph/osd/ceph-0/block of this size; only
# what is written takes disk space.
BLUESTORE_BYTES = 64 * GiB
# memstore: the OSD's data lives in RAM, up to this much.
MEMSTORE_BYTES = 6 * GiB
POOLS = ('volumes', 'images')
CEPH_CLIENTS = {
    'cinder': ['mon', 'profile rbd',
               'osd', 'profile rbd pool=volumes, profile rbd pool=images',
               'mgr', 'profile rbd pool=volumes, profile rbd pool=images'],
    'glance': ['mon', 'profile rbd',
               'osd', 'profile rbd pool=images, '
                      'profile rbd-read-only pool=volumes',
               'mgr', 'profile rbd pool=images'],
}

# Glance image quota (Keystone unified limits), off unless asked for -------
IMAGE_SIZE_TOTAL_MIB = 3072
GLANCE_LIMITS = {  # Keystone registered limits: defaults for every project
    'image_size_total': 1000 * 1024,  # MiB
    'image_stage_total': 1000 * 1024,  # MiB
    'image_count_total': 1000,
    'image_count_uploading': 100,
}

# Installation -------------------------------------------------------------
# qemu-utils: cinder's generic upload converts non-raw formats with qemu-img
APT_PACKAGES = ['ceph-mon', 'ceph-osd', 'ceph-mgr', 'ceph-common',
                'python3-rados', 'python3-rbd', 'rabbitmq-server',
                'mariadb-server', 'qemu-utils', 'etcd-server']
PIP_PACKAGES = [('cinder', '==29.0.0'), ('glance', '==33.0.0'),
                ('keystone', '==30.0.0'), ('python-openstackclient', ''),
                ('python-cinderclient', ''), ('python-glanceclient', ''),
                ('gunicorn', ''), ('PyMySQL', ''), ('stestr', ''),
                ('ddt', ''), ('etcd3gw', '')]
PY_VERSION = '3.11'  # must match Debian's rados/rbd extension modules

# OpenStack releases -------------------------------------------------------
# What `tools/cloud up --release X` installs: that series' newest Cinder,
# Glance and Keystone on PyPI (they replace the pins of PIP_PACKAGES), every
# other package pinned by the release's upper-constraints, the file tox's
# py3-<release> env uses too (constraints/README.rst). Each release has its
# own venv (venv_of), so switching costs no reinstall.
RELEASES = {
    '2025.1': {'cinder': '26.3.0', 'glance': '30.2.0', 'keystone': '27.1.0'},
    '2025.2': {'cinder': '27.0.0', 'glance': '31.1.0', 'keystone': '28.1.0'},
    '2026.1': {'cinder': '28.0.0', 'glance': '32.0.0', 'keystone': '29.1.0'},
    '2026.2': {'cinder': '29.0.0', 'glance': '33.0.0', 'keystone': '30.0.0'},
}
DEFAULT_RELEASE = '2026.2'  # the newest: its venv is .venv
RELEASE_FILE = os.path.join(CLOUD, 'release')  # what the cloud runs


def venv_of(release):
    """The venv of a release: .venv for the newest, else .venv-<release>."""
    return os.path.join(REPO, '.venv' if release == DEFAULT_RELEASE
                        else '.venv-' + release)


def constraints_of(release):
    return os.path.join(REPO, 'constraints', release + '.txt')


def recorded_release(cloud=None):
    """The release the cloud in .cloud was set up with, or None."""
    try:
        with open(os.path.join(cloud or CLOUD, 'release')) as f:
            return f.read().strip() or None
    except OSError:
        return None


def pip_packages(release):
    """PIP_PACKAGES with the release's Cinder, Glance and Keystone."""
    pins = RELEASES[release]
    return [(name, '==' + pins[name] if name in pins else spec)
            for name, spec in PIP_PACKAGES]


def use_release(release):
    """Point VENV, VBIN and VPY at the release's venv."""
    global RELEASE, VENV, VBIN, VPY
    if release not in RELEASES:
        from cloudharness.util import Fail
        raise Fail('unknown release %r (known: %s)' % (
            release, ', '.join(sorted(RELEASES))))
    RELEASE = release
    VENV = venv_of(release)
    VBIN = os.path.join(VENV, 'bin')
    VPY = os.path.join(VBIN, 'python')


RELEASE = None

# Services -----------------------------------------------------------------
# Start order; `down` stops the groups of STOP_GROUPS in order.
SERVICES = ['ceph-mon', 'ceph-mgr', 'ceph-osd', 'rabbitmq', 'mariadb',
            'keystone', 'glance-api', 'cinder-api', 'cinder-scheduler',
            'cinder-volume']
STOP_GROUPS = [['cinder-volume', 'cinder-scheduler', 'cinder-api'],
               ['glance-api'], ['keystone'], ['ceph-osd', 'ceph-mgr'],
               ['ceph-mon'], ['rabbitmq'], ['mariadb']]
PORTS = {'ceph-mon': MON_PORT, 'rabbitmq': RABBIT_PORT, 'mariadb': DB_PORT,
         'keystone': KEYSTONE_PORT, 'glance-api': GLANCE_PORT,
         'cinder-api': CINDER_PORT}
ALIASES = {'cinder': ['cinder-api', 'cinder-scheduler', 'cinder-volume'],
           'glance': ['glance-api'],
           'ceph': ['ceph-mon', 'ceph-mgr', 'ceph-osd'],
           'all': SERVICES}


def services(names):
    """Service names from names and aliases (cinder, glance, ceph, all)."""
    from cloudharness.util import Fail
    out = []
    for n in names:
        for svc in ALIASES.get(n, [n]):
            if svc not in SERVICES:
                raise Fail('unknown service %r (known: %s)' % (
                    n, ', '.join(SERVICES + list(ALIASES))))
            if svc not in out:
                out.append(svc)
    return out


# Active/active: several cinder-volume hosts in one Cinder cluster --------
# `tools/cloud up --volume-hosts N` (env CLOUD_VOLUME_HOSTS). Host 1 is the
# service `cinder-volume` (host `localhost`), host n the service
# `cinder-volume@n` (host `localhost-n`, its own override file and lock
# path); `cinder-volume@1` names host 1 and `cinder-volume` every host.
# With more than one host the cloud is a Cinder cluster: `[DEFAULT]
# cluster`, tooz coordination on etcd (Debian's etcd-server, started by the
# harness). Once clustered, a cloud stays so (its volumes name the
# cluster): `--volume-hosts 1` then runs one host of the cluster.
VOLUME_HOSTS_FILE = os.path.join(CLOUD, 'volume-hosts')
CLUSTERED_FILE = os.path.join(CLOUD, 'clustered')
CLUSTER = 'cloud'
COORDINATION_URL = 'etcd3+http://%s:%d' % (HOST, ETCD_PORT)
ETCD_URL = 'http://%s:%d' % (HOST, ETCD_PORT)
MAX_VOLUME_HOSTS = 4
# clone_upload_gc_grace of a clustered cloud (seconds; heartbeat every 60)
CLUSTER_GC_GRACE = 150


def volume_service(n):
    return 'cinder-volume' if n == 1 else 'cinder-volume@%d' % n


def volume_host(n):
    """cinder.conf `host` of volume host n (backends: host@backend)."""
    return 'localhost' if n == 1 else 'localhost-%d' % n


def recorded_volume_hosts():
    try:
        with open(VOLUME_HOSTS_FILE) as f:
            return max(1, int(f.read().split()[0]))
    except (OSError, ValueError, IndexError):
        return 1


def clustered():
    return os.path.exists(CLUSTERED_FILE)


def configure_volume_hosts(count, cluster):
    """Put volume hosts 2..count and etcd among the services.

    Extra hosts with a pid file stay listed (so that `down` and `status`
    see them) until they are stopped.
    """
    import glob
    extra = set(range(2, count + 1))
    for f in glob.glob(os.path.join(PIDS, 'cinder-volume@*.pid')):
        try:
            extra.add(int(os.path.basename(f)[len('cinder-volume@'):-4]))
        except ValueError:
            pass
    volumes = ['cinder-volume'] + [volume_service(n) for n in sorted(extra)]
    etcd = cluster or os.path.exists(os.path.join(PIDS, 'etcd.pid'))
    SERVICES[:] = [x for x in BASE_SERVICES if x != 'cinder-volume']
    if etcd:
        SERVICES.insert(SERVICES.index('keystone'), 'etcd')
        PORTS['etcd'] = ETCD_PORT
    SERVICES.extend(volumes)
    STOP_GROUPS[0][:] = volumes + ['cinder-scheduler', 'cinder-api']
    if etcd and ['etcd'] not in STOP_GROUPS:
        STOP_GROUPS.insert(STOP_GROUPS.index(['rabbitmq']), ['etcd'])
    ALIASES['cinder'] = ['cinder-api', 'cinder-scheduler'] + volumes
    ALIASES['cinder-volume'] = volumes
    ALIASES['cinder-volume@1'] = ['cinder-volume']


BASE_SERVICES = list(SERVICES)
configure_volume_hosts(recorded_volume_hosts(), clustered())


# The running cloud's release, else the newest; `up`/`install` choose
# (cli.release()).
use_release(recorded_release() if recorded_release() in RELEASES
            else DEFAULT_RELEASE)

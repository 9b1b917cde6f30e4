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

"""Databases: MariaDB for Glance and Cinder; cached pristine copies.

Glance (its location import tasks run in threads) and Cinder (cinder-api,
the scheduler and cinder-volume) write their databases from several
threads and processes at once. sqlite fails such writers with "database
is locked"; a deployment runs a database server, and so does the harness.
Keystone, which mostly reads here, stays on sqlite.

`down` keeps the venv, so a cold start loads a cached copy of each
database (kept in the venv, keyed by package version and inputs) instead
of running the migrations (7-15 s of CPU each).
"""

import glob
import hashlib
import os
import pwd
import shutil
import sqlite3

from cloudharness import processes
from cloudharness import settings as s
from cloudharness import util

DATA = os.path.join(s.DB_DIR, 'data')


def os_user():
    # mariadb-install-db lets the OS user that ran it in over the socket
    return pwd.getpwuid(os.geteuid()).pw_name


def client(*args):
    return ['mariadb', '--no-defaults', '--socket=' + s.DB_SOCKET,
            '--user=' + os_user()] + list(args)


def url(name):
    return 'mysql+pymysql://%s:%s@%s:%d/%s?charset=utf8' % (
        s.DB_USER, s.DB_PASS, s.HOST, s.DB_PORT, name)


def start(note):
    if processes.alive('mariadb'):
        note.append('running')
        return
    if not os.path.exists(os.path.join(s.DB_DIR, 'ready')):
        shutil.rmtree(DATA, ignore_errors=True)
        os.makedirs(s.DB_DIR, exist_ok=True)
        util.run(['mariadb-install-db', '--no-defaults', '--datadir=' + DATA,
                  '--user=' + os_user(), '--skip-test-db',
                  '--auth-root-authentication-method=socket'], timeout=120,
                 service='mariadb')
        util.touch(os.path.join(s.DB_DIR, 'ready'))
        note.append('initialised')
    processes.spawn('mariadb', [
        '/usr/sbin/mariadbd', '--no-defaults', '--datadir=' + DATA,
        '--user=' + os_user(), '--socket=' + s.DB_SOCKET,
        '--pid-file=' + os.path.join(s.DB_DIR, 'mariadb.pid'),
        '--bind-address=' + s.HOST, '--port=%d' % s.DB_PORT,
        '--skip-name-resolve', '--max-connections=500',
        # as OpenStack deployments run it: with REPEATABLE READ's gap
        # locks, Glance's concurrent location imports deadlock on
        # image_properties (a 500 to 1 in 16 uploads at once)
        '--transaction-isolation=READ-COMMITTED',
        # a throw-away test cloud: small cache, no fsync per commit
        '--innodb-buffer-pool-size=64M',
        '--innodb-flush-log-at-trx-commit=2'])
    note.append('started (waited for later)')


def wait():
    util.wait_until(lambda: os.path.exists(s.DB_SOCKET) and
                    util.port_open(s.DB_PORT), 60,
                    'MariaDB on %s:%d' % (s.HOST, s.DB_PORT), 'mariadb')


def server_db(note, name, create):
    """Database `name` on MariaDB: from the cached dump, else create()."""
    wait()
    util.run(client('-e', "CREATE DATABASE IF NOT EXISTS {0}; "
                    "CREATE USER IF NOT EXISTS '{1}'@'{2}' "
                    "IDENTIFIED BY '{3}'; GRANT ALL ON {0}.* TO "
                    "'{1}'@'{2}';".format(name, s.DB_USER, s.HOST,
                                          s.DB_PASS)), service='mariadb')
    tmpl = template(name, ext='sql')
    if os.path.exists(tmpl) and not os.environ.get('CLOUD_NO_DB_CACHE'):
        with open(tmpl) as f:
            util.run(client(name), input=f.read(), service='mariadb')
        note.append('loaded cached DB %s' % os.path.basename(tmpl))
        return
    create()
    dump = util.run(['mariadb-dump', '--no-defaults',
                     '--socket=' + s.DB_SOCKET, '--user=' + os_user(), name],
                    timeout=60, service='mariadb').stdout
    for old in glob.glob(os.path.join(os.path.dirname(tmpl),
                                      name + '-*.sql')):
        os.unlink(old)
    util.write_file(tmpl, dump)
    note.append('%s db sync' % name)


def dist_version(name):
    hits = glob.glob(os.path.join(s.VENV, 'lib', 'python*', 'site-packages',
                                  '%s-*.dist-info' % name))
    return os.path.basename(hits[0])[len(name) + 1:-10] if hits else '?'


def template(kind, inputs='', ext='sqlite'):
    """Path of the pristine copy of a service DB kept in the venv.

    The key holds the package version and everything else the DB content
    depends on.
    """
    key = hashlib.sha256(('%s|%s|%s' % (kind, dist_version(kind), inputs))
                         .encode()).hexdigest()[:16]
    return os.path.join(s.VENV, 'cloud-db-cache',
                        '%s-%s.%s' % (kind, key, ext))


def load_template(note, tmpl, db):
    if os.path.exists(tmpl) and not os.environ.get('CLOUD_NO_DB_CACHE'):
        shutil.copyfile(tmpl, db)
        note.append('copied cached DB %s' % os.path.basename(tmpl))
        return True
    return False


def save_template(tmpl, db):
    """Consistent copy (sqlite backup API) even while a service has it open."""
    os.makedirs(os.path.dirname(tmpl), exist_ok=True)
    kind = os.path.basename(tmpl).rsplit('-', 1)[0]
    for old in glob.glob(os.path.join(os.path.dirname(tmpl),
                                      kind + '-*.sqlite')):
        os.unlink(old)
    src, dst = sqlite3.connect(db), sqlite3.connect(tmpl + '.tmp')
    with dst:
        src.backup(dst)
    src.close()
    dst.close()
    os.replace(tmpl + '.tmp', tmpl)


def wal_mode(db):
    """Put a sqlite DB in WAL mode.

    In the default rollback-journal mode a reader blocks writers and
    requests fail with 'database is locked'. WAL lets readers and one
    writer proceed, which is enough for keystone here.
    """
    con = sqlite3.connect(db)
    try:
        con.execute('PRAGMA journal_mode=WAL')
    finally:
        con.close()

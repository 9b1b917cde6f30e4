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

"""The ``cinder-rbd-upload-clone`` command-line tool.

``doctor`` checks, before and after turning the feature on, whether uploads
of a backend will clone and what to change when they will not. It builds
the backend's driver from cinder.conf and asks the same code the driver
runs at upload time (store discovery, the eligibility decision, the parent
driver's Ceph connections); nothing here is a second implementation.

``collect`` runs one collector sweep of a backend now (what cinder-volume
does every ``clone_upload_gc_interval`` seconds).

``leak-check`` lists RBD images and snapshots that no Cinder volume, Cinder
snapshot or Glance image owns (:mod:`.leak_check`).

Options are parsed by oslo.config as Cinder's own commands parse them:
``--config-file`` and ``--config-dir`` (default: Cinder's, such as
``/etc/cinder/cinder.conf``), then the sub-command and its flags.

Exit status of ``doctor``: 0 when uploads will clone, 1 when they will not,
2 when the doctor itself failed; of ``leak-check``: 0 when nothing leaks, 1
when something does, 2 on errors.
"""

import json
import sys
import uuid

from oslo_config import cfg

EXIT_CLONE, EXIT_NO_CLONE, EXIT_ERROR = 0, 1, 2
CONF = cfg.CONF


class ConfigError(Exception):
    """cinder.conf does not say what the command needs."""


class Check(object):
    """One doctor check; ``affects_uploads`` False: not about uploads."""

    def __init__(self, name, ok, detail, fix=None, affects_uploads=True):
        self.name, self.ok, self.detail, self.fix = name, ok, detail, fix
        self.affects_uploads = affects_uploads

    def as_dict(self):
        return {'check': self.name,
                'result': {True: 'pass', False: 'fail',
                           None: 'not checked'}[self.ok],
                'detail': self.detail, 'fix': self.fix}


def backend_configuration(backend):
    """The configuration of ``backend`` in cinder.conf, as the driver's."""
    from cinder.common import config as _config  # noqa: F401
    from cinder.volume import configuration
    from cinder.volume.drivers import rbd as rbd_driver
    from cinder_rbd_upload_clone import options

    if backend not in (CONF.enabled_backends or []):
        raise ConfigError(
            'backend %r is not in enabled_backends (%s) of %s' % (
                backend, ', '.join(CONF.enabled_backends or []),
                ', '.join(CONF.config_file) or 'any configuration file '
                '(none found: pass --config-file)'))
    return configuration.Configuration(
        rbd_driver.RBD_OPTS + options.upload_clone_opts,
        config_group=backend)


def load(backend, as_service=False):
    """Build the backend's driver from cinder.conf, as cinder-volume.

    :param as_service: take the host name cinder-volume gives the backend
        (its uploads are then this process's: only when that
        cinder-volume is stopped); else a name of the tool's own, which
        owns no upload.
    """
    from cinder.image import image_utils  # noqa: F401 (see stores.py)
    from cinder import objects
    from cinder_rbd_upload_clone import driver as our_driver

    objects.register_all()
    config = backend_configuration(backend)
    # As cinder-volume names it: backend_host, else host; '@' backend.
    host = '%s@%s' % ((config.safe_get('backend_host') or CONF.host)
                      if as_service else 'doctor', backend)
    driver = our_driver.RBDUploadCloneDriver(configuration=config,
                                             host=host)
    return driver


def service_context():
    """An admin context that can find Glance like cinder-volume does."""
    from cinder_rbd_upload_clone import glance_service
    return glance_service.service_context()


def doctor_checks(driver, backend, volume_type=None, glance_user=None,
                  glance_keyring=None):
    from cinder.volume.drivers import rbd as rbd_driver
    from cinder_rbd_upload_clone import compat
    from cinder_rbd_upload_clone import eligibility
    from cinder_rbd_upload_clone import inspection
    from cinder_rbd_upload_clone import stores

    checks = []
    conf = driver.configuration
    # Cinder 26 (2025.1): no [glance] service credentials of its own;
    # glance_client.py brings them (compat.py).
    privileged = compat.GLANCE_PRIVILEGED_CALLS
    checks.append(Check(
        'cinder-release', True,
        'Cinder %s: %s' % (_cinder_version(), 'has [glance] service '
                           'credentials for privileged Glance calls'
                           if privileged else compat.NO_PRIVILEGED_CALLS)))
    enabled = driver._clone_upload_enabled
    checks.append(Check(
        'option', enabled,
        'enable_clone_optimization = %s in [%s]' % (enabled, backend),
        None if enabled else 'set enable_clone_optimization = True in '
                             '[%s]' % backend))

    fsid = None
    try:
        driver.do_setup(None)
        fsid = driver._get_fsid()
        checks.append(Check('ceph', True, 'Ceph cluster %s reachable as '
                            'client.%s' % (fsid, conf.rbd_user)))
    except Exception as e:
        checks.append(Check('ceph', False, 'cannot reach Ceph as client.%s: '
                            '%s' % (conf.rbd_user, e),
                            'check rbd_ceph_conf, rbd_user and its keyring'))

    ctx = None
    store_list = None
    try:
        ctx = service_context()
        store_list = driver._store_discovery.stores(ctx)
        checks.append(Check('glance', True, "Glance answered Cinder's "
                            "[glance] service user"))
        checks.append(Check('stores-detail', True, 'stores detail lists: '
                            '%s' % ', '.join('%s (%s)' % (s.id, s.type)
                                             for s in store_list)))
    except stores.StoreLookupError as e:
        unreachable = 'unreachable' in str(e) or '401' in str(e)
        checks.append(Check(
            'glance', not unreachable, str(e) if unreachable else
            'Glance answered', 'check glance_api_servers and the [glance] '
            'auth options' if unreachable else None))
        if not unreachable:
            checks.append(Check(
                'stores-detail', False, str(e),
                'enable Glance multi-store (enabled_backends) and allow '
                'stores_info_detail to the [glance] user (admin or service '
                'role)'))
    except Exception as e:
        checks.append(Check('glance', False, '%s: %s' % (type(e).__name__, e),
                            'check glance_api_servers and [glance] auth'))

    store_id = None
    if volume_type:
        from cinder.volume import volume_types
        vtype = volume_types.get_volume_type_by_name(
            __import__('cinder.context', fromlist=['x']).get_admin_context(),
            volume_type)
        store_id = (vtype.get('extra_specs') or {}).get(stores.STORE_ID_SPEC)

    store = None
    if store_list is not None:
        try:
            store = stores.select_store(store_list, store_id)
        except stores.StoreLookupError as e:
            checks.append(Check('target-store', False, str(e),
                                'name an existing store in the volume '
                                "type's %s" % stores.STORE_ID_SPEC))
    if store is not None:
        ok = store.type == 'rbd' and bool(store.pool)
        checks.append(Check(
            'target-store', ok, "target store '%s' is %s, pool %s" %
            (store.id, store.type, store.pool),
            None if ok else 'target an rbd store (default store, or the '
                            "volume type's %s)" % stores.STORE_ID_SPEC))
        if ok:
            same = fsid is not None and store.fsid == fsid
            checks.append(Check(
                'fsid', same if fsid else None,
                "store '%s' is on cluster %s, volumes on %s" %
                (store.id, store.fsid, fsid),
                None if same else 'uploads only clone within one Ceph '
                                  'cluster'))

    # The decision itself, for a raw/bare image of a plain volume.
    if store is not None and fsid is not None:
        probe_volume = type('Volume', (), dict(
            id='doctor', encryption_key_id=None, volume_type_id=None,
            volume_type=None))()
        decision = eligibility.decide(
            True, backend, {'disk_format': 'raw',
                            'container_format': 'bare'},
            probe_volume, lambda _sid: store, lambda: fsid,
            quota=lambda: (True, 'not checked'),
            inspect=lambda _store: inspection.Verdict(
                True, 'not inspected', None, 0, 0))
        if store.type == 'rbd' and decision.go:
            name = 'cinder-upload-clone-doctor-%s' % uuid.uuid4()
            try:
                with rbd_driver.RADOSClient(driver, store.pool) as client:
                    driver.RBDProxy().create(client.ioctx, name, 1 << 20,
                                             old_format=False,
                                             features=client.features)
                    driver.RBDProxy().remove(client.ioctx, name)
                checks.append(Check(
                    'images-pool-write', True, 'client.%s created and '
                    'removed an image in pool %s' % (conf.rbd_user,
                                                     store.pool)))
            except Exception as e:
                checks.append(Check(
                    'images-pool-write', False, 'client.%s cannot write '
                    'pool %s: %s' % (conf.rbd_user, store.pool, e),
                    "ceph auth caps client.%s ... osd 'profile rbd "
                    "pool=%s, profile rbd pool=%s'" % (
                        conf.rbd_user, conf.rbd_pool, store.pool)))

    checks.append(glance_read_check(driver, glance_user, glance_keyring))
    checks.extend(parity_checks(driver, ctx))
    checks.append(Check(
        'flatten-policy', True, 'clone_upload_flatten = %s, '
        'rbd_max_clone_depth = %s' % (conf.clone_upload_flatten,
                                      conf.rbd_max_clone_depth)))

    checks.extend(cluster_checks(driver))

    svc = CONF.service_user
    token_ok = bool(svc.send_service_user_token and svc.auth_type)
    glance_type = CONF.glance.auth_type if privileged else None
    glance_auth = bool(glance_type)
    checks.append(Check(
        'service-token', token_ok and glance_auth,
        '[service_user] send_service_user_token = %s, auth_type = %s; '
        '[glance] auth_type = %s' % (svc.send_service_user_token,
                                     svc.auth_type, glance_type),
        None if token_ok and glance_auth else
        "set [service_user] send_service_user_token = True with a user "
        "holding the 'service' role, and [glance] auth options: Glance's "
        "location API is service-only"))
    return checks


def _conf_cluster():
    """``[DEFAULT] cluster`` (registered by cinder-volume's command)."""
    try:
        return CONF.cluster
    except cfg.NoSuchOptError:
        CONF.register_opt(cfg.StrOpt('cluster'))
        return CONF.cluster


def _redacted(url):
    """A URL without its user information (passwords)."""
    import urllib.parse
    parts = urllib.parse.urlsplit(url)
    if '@' not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(
        netloc='***@' + parts.netloc.rsplit('@', 1)[1]))


def coordination_reachable(url):
    """(ok, detail): start and stop a tooz member on ``url``."""
    from tooz import coordination
    member = ('cinder-rbd-upload-clone-doctor-%s' % uuid.uuid4()).encode()
    try:
        coordinator = coordination.get_coordinator(url, member)
        coordinator.start()
        coordinator.stop()
    except Exception as e:
        return False, '%s: %s' % (type(e).__name__, e)
    return True, 'reachable'


def cluster_checks(driver):
    """What the driver needs from Cinder's clustering (active/active).

    Not about whether uploads clone: about uploads staying safe when
    several cinder-volume hosts serve the backend.
    """
    from cinder import coordination  # noqa: F401 ([coordination] opts)
    from cinder_rbd_upload_clone import mixin

    conf = driver.configuration
    checks = []
    cluster = _conf_cluster()
    backend_host = conf.safe_get('backend_host')
    owner = driver.host
    if cluster:
        detail = ('cinder-volume runs active/active in cluster %s: any '
                  'host of it serves this backend\'s uploads; this one owns '
                  'its uploads in the journal as %s' % (cluster, owner))
        if backend_host:
            detail += (' (backend_host = %s: every host of the cluster '
                       'needs its own, the journal tells owners apart by '
                       'it)' % backend_host)
    else:
        detail = ('no [DEFAULT] cluster: one cinder-volume serves this '
                  'backend; it owns its uploads in the journal as %s' %
                  owner)
    checks.append(Check('cluster', True, detail, affects_uploads=False))

    url = CONF.coordination.backend_url or ''
    shown = _redacted(url)
    if url.startswith('file://'):
        ok = not cluster
        checks.append(Check(
            'coordination', ok, '[coordination] backend_url = %s: locks '
            'of this host only%s' % (shown, '' if ok else ', but cluster '
                                     '%s has other hosts' % cluster),
            None if ok else 'set [coordination] backend_url to a tooz '
            'backend every host of the cluster reaches, such as '
            'etcd3+http://<etcd>:2379', affects_uploads=False))
    else:
        ok, why = coordination_reachable(url)
        checks.append(Check(
            'coordination', ok, '[coordination] backend_url = %s: %s' % (
                shown, why),
            None if ok else 'check the coordination service and '
            '[coordination] backend_url', affects_uploads=False))

    grace = conf.clone_upload_gc_grace
    beat = mixin.UploadCloneMixin.HEARTBEAT_INTERVAL
    ok = grace >= 2 * beat
    checks.append(Check(
        'collector-grace', ok, 'clone_upload_gc_grace = %ds: another '
        'host\'s collector takes over an upload after %ds without '
        'heartbeat (every %ds)' % (grace, grace, beat),
        None if ok else 'set clone_upload_gc_grace to %d or more, or '
        'collectors take over uploads that are still running' %
        (2 * beat), affects_uploads=False))
    return checks


def parity_checks(driver, ctx):
    """Are the checks Glance makes on uploads made on clones too?"""
    from cinder_rbd_upload_clone import glance_service
    from cinder_rbd_upload_clone import image_quota

    conf = driver.configuration
    checks = [Check(
        'format-inspection', True,
        "Glance's format inspection runs on every upload snapshot before "
        "it is cloned; non-fatal GPT checks: %s (must equal Glance's "
        "[image_format] gpt_safety_checks_nonfatal)" % (
            ', '.join(conf.clone_upload_gpt_safety_checks_nonfatal) or
            'none'))]
    try:
        usage = (image_quota.read_usage(ctx, privileged_user=True)
                 if ctx else None)
    except image_quota.QuotaUnknown as e:
        checks.append(Check(
            'image-quota', False, '%s: uploads will not clone' % e,
            "let Cinder's users read GET /v2/info/usage in Glance"))
    else:
        checks.append(Check(
            'image-quota', None if usage is None else True,
            'not checked (no Glance)' if usage is None else
            'Glance enforces unified limits (%s): clones are checked '
            'against them' % ', '.join(sorted(usage)) if usage else
            'Glance enforces no unified limits: nothing to check'))
    checks.append(Check(
        'image-size-cap', True, 'clone_upload_image_size_cap = %d (must '
        "equal Glance's image_size_cap)" % conf.clone_upload_image_size_cap))
    sees_all, why = glance_service.sees_all_images()
    checks.append(Check(
        'collector-evidence', sees_all, why, None if sees_all else
        "give Cinder's [glance] user the admin role, or the collector "
        "keeps clones whose images Glance answers with 404",
        affects_uploads=False))
    return checks


def _cinder_version():
    from importlib import metadata
    try:
        return metadata.version('cinder')
    except metadata.PackageNotFoundError:
        return 'unknown'


def glance_read_check(driver, user, keyring):
    conf = driver.configuration
    if not user or not keyring:
        return Check('glance-reads-volumes', None,
                     "not checked: pass --glance-ceph-user and "
                     "--glance-keyring to check that Glance's Ceph user "
                     "can read pool %s" % conf.rbd_pool)
    try:
        cluster = driver.rados.Rados(rados_id=user,
                                     conffile=conf.rbd_ceph_conf,
                                     conf={'keyring': keyring})
        cluster.connect(timeout=10)
        try:
            with cluster.open_ioctx(conf.rbd_pool) as ioctx:
                driver.rbd.RBD().list(ioctx)
        finally:
            cluster.shutdown()
        return Check('glance-reads-volumes', True, 'client.%s can read '
                     'pool %s' % (user, conf.rbd_pool))
    except Exception as e:
        return Check('glance-reads-volumes', False, 'client.%s cannot read '
                     'pool %s: %s' % (user, conf.rbd_pool, e),
                     "ceph auth caps client.%s ... osd '... profile "
                     "rbd-read-only pool=%s'" % (user, conf.rbd_pool))


def cmd_doctor(args):
    driver = load(args.backend)
    checks = doctor_checks(driver, args.backend, args.volume_type,
                           args.glance_ceph_user, args.glance_keyring)
    will_clone = all(c.ok is not False for c in checks
                     if c.affects_uploads)
    if args.format == 'json':
        print(json.dumps({'backend': args.backend, 'will_clone': will_clone,
                          'checks': [c.as_dict() for c in checks]},
                         indent=2))
    else:
        for c in checks:
            mark = {True: 'PASS', False: 'FAIL', None: 'SKIP'}[c.ok]
            line = '%-4s %-20s %s' % (mark, c.name, c.detail)
            if c.fix and c.ok is False:
                line += '\n     %-20s fix: %s' % ('', c.fix)
            print(line)
        print('uploads of backend %s %s' % (
            args.backend, 'will clone' if will_clone else 'will NOT clone'))
    return EXIT_CLONE if will_clone else EXIT_NO_CLONE


def cmd_collect(args):
    # As this host's cinder-volume with --startup (its uploads are dead:
    # the service is stopped), else as a process of its own, which takes
    # over only uploads whose owner stopped beating.
    driver = load(args.backend, as_service=args.startup)
    driver.do_setup(None)
    counts = driver.collect_upload_leftovers()
    print(json.dumps(counts))
    return 0


def cmd_leak_check(args):
    from cinder_rbd_upload_clone.cmd import leak_check

    ceph_conf, rados_id, volumes_pool = (args.ceph_conf, args.id,
                                         args.volumes_pool)
    if args.backend:
        # Defaults from the backend section, as its driver reads them.
        config = backend_configuration(args.backend)
        ceph_conf = ceph_conf or config.rbd_ceph_conf
        rados_id = rados_id or config.rbd_user
        volumes_pool = volumes_pool or config.rbd_pool
    return leak_check.run(ceph_conf or '/etc/ceph/ceph.conf',
                          rados_id or 'admin', args.openrc,
                          volumes_pool or 'volumes',
                          args.images_pool or 'images', args.json,
                          settle=args.settle)


def _doctor_args(parser):
    parser.add_argument('--backend', required=True,
                        help='the backend section in cinder.conf')
    parser.add_argument('--volume-type',
                        help="check the store of this volume type's "
                             "image_service:store_id")
    parser.add_argument('--glance-ceph-user',
                        help="Glance's cephx user, to check that it can "
                             "read the volumes pool")
    parser.add_argument('--glance-keyring', help="that user's keyring")
    parser.add_argument('--format', choices=('text', 'json'),
                        default='text')


def _collect_args(parser):
    parser.add_argument('--backend', required=True,
                        help='the backend section in cinder.conf')
    parser.add_argument('--startup', action='store_true',
                        help='also take this host\'s pending clones at once '
                             '(only when its cinder-volume is stopped)')


def _leak_check_args(parser):
    from cinder_rbd_upload_clone.cmd import leak_check

    parser.add_argument('--backend',
                        help='take --ceph-conf, --id and --volumes-pool '
                             'from this backend section of cinder.conf')
    leak_check.add_arguments(parser)


COMMANDS = (
    ('doctor', cmd_doctor, _doctor_args,
     'will uploads of a backend clone? (exit 0 yes, 1 no, 2 error)'),
    ('collect', cmd_collect, _collect_args, 'run one collector sweep now'),
    ('leak-check', cmd_leak_check, _leak_check_args,
     'list RBD images and snapshots that no volume, snapshot or image owns '
     '(exit 0 none, 1 some, 2 error)'),
)


def add_command_parsers(subparsers):
    for name, func, add_args, help_text in COMMANDS:
        parser = subparsers.add_parser(name, help=help_text,
                                       description=help_text)
        add_args(parser)
        parser.set_defaults(func=func)


command_opt = cfg.SubCommandOpt('command', title='Commands',
                                help='what to do',
                                handler=add_command_parsers)

# oslo.config's own options: before or after the sub-command's name.
_CONFIG_FLAGS = ('--config-file', '--config-dir')


def _config_flags_first(argv):
    """Move --config-file/--config-dir given after the sub-command first.

    oslo.config parses them before the sub-command (``cinder-rbd-upload-
    clone --config-file F doctor ...``); earlier releases of this tool took
    them after it (``doctor --config-file F``), which still works.
    """
    front, rest = [], []
    args = iter(argv)
    for arg in args:
        if arg in _CONFIG_FLAGS:
            front.append(arg)
            front.append(next(args, ''))
        elif arg.startswith(tuple(f + '=' for f in _CONFIG_FLAGS)):
            front.append(arg)
        else:
            rest.append(arg)
    return front + rest


def parse_args(argv, conf=CONF, default_config_files=None):
    """Parse the command line as Cinder's services do.

    ``--config-file`` and ``--config-dir`` as oslo.config parses them, with
    Cinder's default files (``/etc/cinder/cinder.conf`` and the like,
    ``project='cinder'``); the sub-command is ``conf.command``.
    """
    from cinder_rbd_upload_clone import version

    conf.register_cli_opt(command_opt)
    conf(_config_flags_first(list(argv)), project='cinder',
         prog='cinder-rbd-upload-clone', version=version.release_string(),
         default_config_files=default_config_files)
    return conf.command


def main(argv=None):
    # Cinder's options, oslo.log's command-line ones among them, exist
    # before the command line is parsed, as in Cinder's own commands.
    from cinder.common import config  # noqa: F401
    from oslo_log import log as logging

    # Logs go to stderr or Cinder's log file: stdout is the command's.
    CONF.set_default('use_stderr', True)
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.setup(CONF, 'cinder-rbd-upload-clone')
    try:
        return args.func(args)
    except SystemExit:
        raise
    except Exception as e:
        print('cinder-rbd-upload-clone %s: %s: %s' % (
            args.name, type(e).__name__, e), file=sys.stderr)
        return EXIT_ERROR


if __name__ == '__main__':
    sys.exit(main())

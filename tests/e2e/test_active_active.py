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

"""Active/active: two cinder-volume hosts in one Cinder cluster.

Needs `tools/cloud up --volume-hosts 2` (hosts ``localhost`` and
``localhost-2``, cluster ``cloud``, tooz coordination on etcd); skipped on
a cloud with one volume host. Every upload goes through the real
``cinder`` CLI to the cluster's queue, which either host serves. Which
host did what is read from each host's own log; ownership from the upload
journal (the RADOS object ``rbd_upload_clone.journal``).

Each test ends with every image either ``active`` with its volume's bytes
(Glance's ``os_hash_value`` and a download) or not active with nothing
left in RBD, and with tools/leak-check finding nothing.
"""

import concurrent.futures
import datetime
import os
import re
import threading
import time

import testtools
import testtools.content

from cinder_rbd_upload_clone import clone
from tests.e2e import base

LOGS = os.path.join(base.cloudlib.CLOUD, 'logs')
# Volume host name -> its log file in .cloud/logs, and its name for
# `tools/cloud kill` (there `cinder-volume` means every host).
SERVICES = {'localhost': 'cinder-volume', 'localhost-2': 'cinder-volume@2'}
KILL = {'localhost': 'cinder-volume@1', 'localhost-2': 'cinder-volume@2'}
UPLOAD_LINE = re.compile(r'Upload of volume \S+ to image (\S+): '
                         r'(clone|generic copy|clone \(undo\)) '
                         r'(done|failed)')
GRACE_FILE = os.path.join(base.cloudlib.CLOUD, 'cinder', 'cinder.conf')


def volume_hosts_up():
    """Hosts (without @backend) whose every cinder-volume backend is up."""
    cinder = base.cloudlib.clients('admin-openrc')[1]
    states = {}
    for svc in cinder.services.list(binary='cinder-volume'):
        states.setdefault(svc.host.split('@')[0], []).append(svc.state)
    return sorted(h for h, st in states.items()
                  if st and all(x == 'up' for x in st))


def cluster_grace():
    """clone_upload_gc_grace of the cloud's rbd-clone backend."""
    import configparser
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(GRACE_FILE)
    return int(parser['rbd-clone'].get('clone_upload_gc_grace', '3600'))


def log_lines(host):
    try:
        with open(os.path.join(LOGS, SERVICES[host] + '.log'),
                  errors='replace') as f:
            return f.readlines()
    except OSError:
        return []


def log_time(line):
    """Epoch seconds of an oslo.log line (local time), or None."""
    try:
        return datetime.datetime.strptime(
            line[:23], '%Y-%m-%d %H:%M:%S.%f').timestamp()
    except ValueError:
        return None


class Uploads(object):
    """Volumes prepared for uploads, and what happened to their images."""

    def __init__(self, test):
        self.test = test
        self.volumes = {}       # volume id -> (type, sha512, sha256)
        self.images = {}        # image id -> volume id
        self.lock = threading.Lock()

    def prepare(self, count, volume_type, written):
        def one(i):
            vol_id = self.test.create_volume(
                'aa-%s-%d' % (volume_type, i), volume_type=volume_type)['id']
            self.test.write_volume(vol_id, size=written)
            return vol_id, (volume_type, self.test.volume_sha512(vol_id))
        # Eight at a time: the sha512 of each 1 GiB volume is the
        # slow part (hashlib releases the GIL).
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            self.volumes.update(pool.map(one, range(count)))

    def start_all(self, order=None):
        """Start every upload at once; returns the threads' pool."""
        def start(vol_id):
            image_id = self.test.upload_async(vol_id, 'aa-%s' % vol_id)
            with self.lock:
                self.images[image_id] = vol_id
            return image_id
        pool = concurrent.futures.ThreadPoolExecutor(len(self.volumes))
        futures = [pool.submit(start, v) for v in (order or self.volumes)]
        pool.shutdown(wait=False)
        return futures

    def uploader(self):
        """{image id: (host, path, outcome)} from the hosts' logs."""
        found = {}
        for host in SERVICES:
            for line in log_lines(host):
                m = UPLOAD_LINE.search(line)
                if m and m.group(1) in self.images:
                    found[m.group(1)] = (host, m.group(2), m.group(3))
        return found


class ActiveActiveTestCase(base.E2ETestCase):

    def setUp(self):
        super(ActiveActiveTestCase, self).setUp()
        hosts = volume_hosts_up()
        if len(hosts) < 2:
            self.skipTest('needs two cinder-volume hosts in one cluster '
                          '(tools/cloud up --volume-hosts 2); up: %s' %
                          (', '.join(hosts) or 'none'))
        self.grace = cluster_grace()

    def report(self, text):
        """Keep what a test measured in .cloud/logs (and its details)."""
        name = self.id().rsplit('.', 1)[-1]
        with open(os.path.join(LOGS, 'active-active-%s.txt' % name),
                  'a') as f:
            f.write(text + '\n')

    def records_of(self, host, images):
        return {i: r for i, r in self.ceph.journal().items()
                if i in images and r['host'].split('@')[0] == host}

    def assert_image_outcome(self, uploads, image_id, outcomes,
                             download=False):
        """Active with the volume's bytes, or not active and cleaned.

        The bytes: Glance's os_hash_value (sha512), which Glance computes
        by reading every byte of the image through its rbd store; with
        ``download`` also a download of the whole image (1 GiB each: a
        sample only).
        """
        vol_id = uploads.images[image_id]
        vtype, sha512 = uploads.volumes[vol_id]
        image = self.glance.images.get(image_id)
        snap = clone.upload_snap_name(image_id)
        _host, path, _outcome = uploads.uploader().get(
            image_id, (None, None, None))
        if image['status'] == 'active':
            self.assertEqual(
                sha512, self.wait_hash(image_id)['os_hash_value'],
                'image %s of volume %s' % (image_id, vol_id))
            if download:
                self.assertEqual(
                    self.ceph.sha256('volumes', 'volume-%s' % vol_id),
                    self.download_sha256(image_id))
            if vtype == 'clone' and path != 'generic copy':
                self.assertEqual(('volumes', 'volume-%s' % vol_id, snap),
                                 self.ceph.parent('images', image_id))
            # A clone upload may take the generic copy (Glance refusing
            # the location under load, say): its bytes are checked all
            # the same.
            outcomes[image_id] = 'active%s, bytes match' % (
                ' (generic copy)' if path == 'generic copy' else '')
        else:
            inventory = self.ceph.inventory()
            self.assertNotIn('images/%s' % image_id, inventory)
            self.assertNotIn(snap, inventory.get('volumes/volume-%s' %
                                                 vol_id, []))
            outcomes[image_id] = '%s, nothing in RBD' % image['status']
        self.assertNotIn(image_id, self.ceph.journal())

    def remove_all(self, uploads):
        def remove(vol_id):
            status = self.cinder.volumes.get(vol_id).status
            if status == 'uploading':
                # As upstream leaves a volume whose upload host died.
                base.run('cinder', 'reset-state', '--state', 'available',
                         vol_id, openrc='admin-openrc')
                self.wait_volume(vol_id, 'available')
            for image_id, v in list(uploads.images.items()):
                if v == vol_id:
                    self.delete_image(image_id)
            for attempt in range(3):
                try:
                    self.delete_volume(vol_id, timeout=120)
                    return
                except RuntimeError:
                    # A volume the killed host had open keeps its RADOS
                    # watch for a while: Cinder's RBD driver answers
                    # VolumeIsBusy and the volume is available again.
                    if attempt == 2:
                        raise
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(remove, uploads.volumes))

    def test_sixteen_uploads_at_once_spread_over_both_hosts(self):
        uploads = Uploads(self)
        uploads.prepare(16, 'clone', 16 * base.MiB)
        start = time.monotonic()
        images = [f.result() for f in uploads.start_all()]
        for image_id in images:
            self.wait_image(image_id, 'active')
        took = time.monotonic() - start
        logged = uploads.uploader()
        hosts = [host for host, _path, _outcome in logged.values()]
        summary = '16 uploads active in %.1fs; by host: %s' % (
            took, {h: hosts.count(h) for h in SERVICES})
        self.addDetail('uploads', testtools.content.text_content(summary))
        self.report(summary)
        # All cloned, on both hosts.
        self.assertEqual(set(images), set(logged))
        self.assertEqual({'clone'}, {p for _h, p, _o in logged.values()})
        self.assertEqual(set(SERVICES), set(hosts))
        outcomes = {}
        # os_hash_value of each; one image downloaded whole.
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda i: self.assert_image_outcome(
                uploads, i, outcomes, i == images[0]), images))
        self.assertEqual({'active, bytes match'}, set(outcomes.values()))
        # Neither collector acted on an upload of either host.
        for host in SERVICES:
            for line in log_lines(host):
                if any(i in line for i in images):
                    self.assertNotIn('left by', line)
                    self.assertNotIn('Removed clone', line)
        self.remove_all(uploads)
        self.assert_no_leaks()

    def kill_mid_uploads(self, victim, flattens, clones):
        """Kill ``victim`` while it has uploads and flattens in flight.

        Background flattens (``flattens`` clone-flatten volumes, 512 MiB
        written) start first;
        once the journal shows the victim owning one, clone uploads
        start, and the victim is killed as soon as it owns one of them
        that Glance does not serve yet.
        """
        uploads = Uploads(self)
        uploads.prepare(flattens, 'clone-flatten', 512 * base.MiB)
        flatten_vols = list(uploads.volumes)
        uploads.prepare(clones, 'clone', 16 * base.MiB)
        clone_vols = [v for v in uploads.volumes if v not in flatten_vols]

        def victim_owns(state, timeout):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                owned = self.records_of(victim, uploads.images)
                if state in {r['state'] for r in owned.values()}:
                    return owned
                time.sleep(0.02)
            return {}
        futures = uploads.start_all(flatten_vols)
        flattening = victim_owns('flatten', 120)
        futures += uploads.start_all(clone_vols)
        owned = victim_owns('pending', 60)
        self.assertTrue(owned, '%s never owned a clone upload in flight '
                        '(owned flattens: %s)' % (victim, flattening))
        base.cloud('kill', KILL[victim])
        killed_at = time.time()
        self.addCleanup(base.cloud, 'up')
        for f in futures:
            f.result()      # the CLI calls returned (cinder-api answered)
        self.addDetail('owned by %s at the kill' % victim,
                       testtools.content.text_content('\n'.join(
                           '%s %s' % (i, r) for i, r in owned.items())))
        return uploads, owned, killed_at

    def settle(self, uploads, victim, timeout):
        """Wait until the journal holds none of the uploads."""
        def check():
            left = {i: r for i, r in self.ceph.journal().items()
                    if i in uploads.images}
            return not left, left
        base.wait_for('the journal to settle every upload', check,
                      timeout, interval=2)

    def check_outcomes(self, uploads, owned, victim):
        outcomes = {}
        downloaded = set()
        for image_id in sorted(uploads.images):
            # Every image the dead host owned, and one of each type.
            vtype = uploads.volumes[uploads.images[image_id]][0]
            self.assert_image_outcome(
                uploads, image_id, outcomes,
                download=vtype not in downloaded or image_id in owned)
            if outcomes[image_id].startswith('active'):
                downloaded.add(vtype)
        # A flatten is done once: one "Flattened" line per image; or,
        # interrupted by the kill, not resumed: the image stays a clone.
        for image_id, vol_id in uploads.images.items():
            if (uploads.volumes[vol_id][0] == 'clone-flatten' and
                    outcomes[image_id].startswith('active')):
                lines = [line for h in SERVICES for line in log_lines(h)
                         if 'Flattened image clone images/%s' % image_id
                         in line]
                kept = [line for h in SERVICES for line in log_lines(h)
                        if 'flatten of image %s not resumed' % image_id
                        in line]
                if kept:
                    self.assertEqual([], lines)
                    self.assertIsNotNone(self.ceph.parent('images',
                                                          image_id))
                    outcomes[image_id] += ', kept a clone (flatten ' \
                        'interrupted)'
                else:
                    self.assertEqual(1, len(lines), lines)
                    self.assertIsNone(self.ceph.parent('images', image_id))
        logged = uploads.uploader()
        rows = []
        for i in sorted(uploads.images):
            host, path, done = logged.get(i, ('-', '-', '-'))
            rows.append('%-36s %-13s %-8s %-12s %-20s %s' % (
                i, uploads.volumes[uploads.images[i]][0],
                owned[i]['state'] if i in owned else '-', host,
                '%s %s' % (path, done), outcomes[i]))
        table = '\n'.join(rows)
        self.report('image, type, victim owned at kill, uploaded by, '
                    'upload, outcome\n' + table)
        self.addDetail('outcomes', testtools.content.text_content(table))
        return outcomes

    def test_survivor_takes_over_a_dead_hosts_uploads(self):
        victim, survivor = 'localhost-2', 'localhost'
        uploads, owned, killed_at = self.kill_mid_uploads(victim, 3, 5)
        # The survivor waits for the dead host's heartbeat to age past
        # the grace, then settles what it left.
        self.settle(uploads, victim, self.grace + 120)
        outcomes = self.check_outcomes(uploads, owned, victim)
        # Before then, the survivor's collector did not touch them: its
        # take-overs come no earlier than the grace after the dead
        # host's last heartbeat (at most 60 s before the kill).
        taken = [line for line in log_lines(survivor)
                 if 'left by %s@' % victim in line and
                 any(i in line for i in owned)]
        self.addDetail('take-overs', testtools.content.text_content(
            ''.join(taken)))
        self.report('killed %s at %s; take-overs by %s:\n%s' % (
            victim, time.strftime('%H:%M:%S', time.localtime(killed_at)),
            survivor, ''.join(
                line[11:19] + ' ' + line.split('] ', 1)[-1][:160] + '\n'
                for line in taken)))
        self.assertTrue(taken, 'the survivor settled nothing of the '
                        'dead host')
        for line in taken:
            self.assertGreaterEqual(log_time(line),
                                    killed_at - 60 + self.grace - 2, line)
        self.assertIn('active, bytes match', outcomes.values())
        self.remove_all(uploads)
        self.assert_no_leaks()

    def test_restarted_host_finishes_what_it_left(self):
        victim, survivor = 'localhost', 'localhost-2'
        uploads, owned, killed_at = self.kill_mid_uploads(victim, 2, 4)
        base.cloud('up')
        restarted = time.monotonic()
        # Its first sweep settles its own records at once, well within
        # the grace the other host would wait.
        self.settle(uploads, victim, self.grace - 30)
        settled = 'settled %.1fs after the restart' % (
            time.monotonic() - restarted)
        self.addDetail('settled', testtools.content.text_content(settled))
        self.report(settled)
        self.check_outcomes(uploads, owned, victim)
        for line in log_lines(survivor):
            if any(i in line for i in owned):
                self.assertNotIn('left by', line)
                self.assertNotIn('Removed clone', line)
        self.remove_all(uploads)
        self.assert_no_leaks()

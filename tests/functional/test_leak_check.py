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

"""tools/leak-check on the real cluster: every kind of leak it claims to
find is planted with the admin keyring, reported with its kind, removed.

Each test compares leak-check's report before and after planting, so
anything else on the cluster does not matter; one test checks that the
cluster, with nothing planted, has no leak at all.
"""

import json
import os
import subprocess
import sys
import time
import uuid

import rados
import testtools

from cinder_rbd_upload_clone.cmd import leak_check as leak_check_cmd
from cinder_rbd_upload_clone import journal
from tests.functional import base

TOOL = os.path.join(base.REPO, 'tools', 'leak-check')
MiB = base.MiB


def leak_check():
    """(exit status, {(kind, item)}) of `tools/leak-check --json`."""
    proc = subprocess.run([sys.executable, TOOL, '--json'],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode not in (0, 1):
        raise AssertionError('leak-check failed (%d): %s%s' % (
            proc.returncode, proc.stdout, proc.stderr))
    report = json.loads(proc.stdout)
    return proc.returncode, {(leak['kind'], leak['item'])
                             for leak in report['leaks']}


class LeakCheckTestCase(testtools.TestCase):

    def setUp(self):
        super(LeakCheckTestCase, self).setUp()
        self.ceph = base.Ceph()
        self.addCleanup(self.ceph.close)
        self.before = leak_check()[1]
        # The driver's collector (in cinder-volume) removes some of these
        # leftovers itself: keep it still while leaks are planted.
        base.cloud('kill', '--signal', 'STOP', 'cinder-volume')
        self.addCleanup(base.cloud, 'kill', '--signal', 'CONT',
                        'cinder-volume')

    def planted(self):
        """What leak-check reports now that it did not before."""
        status, leaks = leak_check()
        new = leaks - self.before
        if new:
            self.assertEqual(1, status)
        return new

    def volume(self, suffix=''):
        """volumes/volume-<new uuid><suffix>, removed after the test."""
        name = 'volume-%s%s' % (uuid.uuid4(), suffix)
        self.ceph.create('volumes', name, 4 * MiB)
        self.addCleanup(self.ceph.remove, 'volumes', name)
        return name

    def test_orphan_clone(self):
        # An upload's clone in the images pool that no Glance image owns
        # (a crash between the clone and its registration).
        vol = self.volume()
        image_id = str(uuid.uuid4())
        snap = 'upload-%s.clone_snap' % image_id
        self.ceph.snapshot('volumes', vol, snap)
        self.ceph.clone('volumes', vol, snap, 'images', image_id)
        self.addCleanup(self.ceph.remove, 'images', image_id)
        self.ceph.snapshot('images', image_id, 'snap')
        self.assertEqual({
            ('orphan-image', 'images/%s' % image_id),
            ('orphan-image', 'images/%s@snap' % image_id),
            ('orphan-volume', 'volumes/%s' % vol),
            ('orphan-upload-snapshot', 'volumes/%s@%s' % (vol, snap)),
        }, self.planted())

    def test_upload_snapshot_without_image(self):
        vol = self.volume()
        snap = 'upload-%s.clone_snap' % uuid.uuid4()
        self.ceph.snapshot('volumes', vol, snap)
        self.assertEqual({
            ('orphan-volume', 'volumes/%s' % vol),
            ('orphan-upload-snapshot', 'volumes/%s@%s' % (vol, snap)),
        }, self.planted())

    def journal_record(self, image_id, vol, beat_age):
        """A journal record of an upload whose owner beat beat_age ago."""
        record = journal.new_record(image_id, vol, 'images',
                                    'leak-check-test@rbd')
        record = record._replace(beat=time.time() - beat_age)
        book = journal.Journal(rados, self.ceph.ioctx['volumes'])
        book.put(record)
        self.addCleanup(book.remove, image_id)

    def test_upload_in_flight_is_not_a_leak(self):
        # The snapshot of an upload under way, before its clone exists:
        # its journal record's owner is alive.
        vol = self.volume()
        image_id = str(uuid.uuid4())
        snap = 'upload-%s.clone_snap' % image_id
        self.ceph.snapshot('volumes', vol, snap)
        self.journal_record(image_id, vol, beat_age=5)
        self.assertEqual({('orphan-volume', 'volumes/%s' % vol)},
                         self.planted())

    def test_upload_of_a_dead_owner_is_a_leak(self):
        # A record whose owner stopped beating protects nothing.
        vol = self.volume()
        image_id = str(uuid.uuid4())
        snap = 'upload-%s.clone_snap' % image_id
        self.ceph.snapshot('volumes', vol, snap)
        self.journal_record(image_id, vol,
                            beat_age=leak_check_cmd.IN_FLIGHT_SECONDS + 60)
        self.assertEqual({
            ('orphan-volume', 'volumes/%s' % vol),
            ('orphan-upload-snapshot', 'volumes/%s@%s' % (vol, snap)),
        }, self.planted())

    def test_deleted_volume_without_children(self):
        vol = self.volume('.deleted')
        self.assertEqual({('deleted-volume-unneeded', 'volumes/%s' % vol)},
                         self.planted())

    def test_deleted_volume_with_a_child_is_not_a_leak(self):
        # What the driver keeps on purpose: its clone's owner is what
        # leak-check looks at (here an orphan image, reported as such).
        vol = self.volume('.deleted')
        snap = 'snap-%s.clone_snap' % uuid.uuid4()
        self.ceph.snapshot('volumes', vol, snap)
        child = str(uuid.uuid4())
        self.ceph.clone('volumes', vol, snap, 'images', child)
        self.addCleanup(self.ceph.remove, 'images', child)
        self.assertEqual({('orphan-image', 'images/%s' % child)},
                         self.planted())

    def test_trash_entry(self):
        vol = self.volume()
        trash_id = self.ceph.trash_move('volumes', vol)
        self.addCleanup(self.ceph.trash_remove, 'volumes', trash_id)
        self.assertEqual({('trash', 'volumes/trash/%s (%s)' % (trash_id,
                                                               vol))},
                         self.planted())

    def test_removed_leaks_are_no_longer_reported(self):
        vol = self.volume('.deleted')
        self.assertEqual(1, len(self.planted()))
        self.ceph.remove('volumes', vol)
        self.assertEqual(set(), self.planted())


class CleanClusterTestCase(testtools.TestCase):

    def test_clean_cluster_reports_none(self):
        # Nothing planted: the cloud's own volumes, snapshots and images
        # are all owned (waiting for the collector to finish what earlier
        # tests left to it).
        deadline = time.monotonic() + 120
        while True:
            status, leaks = leak_check()
            if not leaks or time.monotonic() > deadline:
                break
            time.sleep(3)
        self.assertEqual((0, set()), (status, leaks))

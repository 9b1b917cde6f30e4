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

"""The committed sample configuration matches the options in the code."""

import io
import os

from oslo_config import cfg
from oslo_config import generator
import testtools

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
GENERATOR_CONF = os.path.join(ROOT, 'etc', 'oslo-config-generator',
                              'cinder-rbd-upload-clone.conf')
SAMPLE = os.path.join(ROOT, 'doc', 'source', '_static',
                      'cinder-rbd-upload-clone.conf.sample')


class SampleConfigTestCase(testtools.TestCase):

    def _generate(self):
        """The sample as ``tox -e genconfig`` would write it, in memory."""
        conf = cfg.ConfigOpts()
        generator.register_cli_opts(conf)
        conf(['--config-file', GENERATOR_CONF], project='cinder-rbd-upload-'
             'clone', default_config_files=[], default_config_dirs=[])
        self.assertEqual(['cinder_rbd_upload_clone'], conf.namespace)
        self.assertEqual(79, conf.wrap_width)
        out = io.StringIO()
        generator.generate(conf, output_file=out)
        return out.getvalue()

    def test_sample_is_current(self):
        with open(SAMPLE) as f:
            committed = f.read()
        self.assertEqual(
            committed, self._generate(),
            '%s is out of date with the options in the code: run '
            '"tox -e genconfig" and commit the result' %
            os.path.relpath(SAMPLE, ROOT))

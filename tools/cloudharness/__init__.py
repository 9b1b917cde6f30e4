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

"""The local cloud harness behind tools/cloud, one module per part.

settings    where everything lives, ports, credentials, fixed choices
util        steps and failures, commands, files, HTTP, waiting
processes   start, record, find, stop, kill by recorded pid; logs; RSS
install     Debian packages, the venv, this project, rados/rbd in the venv
ceph        mon, mgr, OSD, pools, cephx users; health and fullness
ceph_admin  cluster operations run in Debian's python3 (rados, rbd)
broker      RabbitMQ
database    MariaDB; cached pristine databases
keystone    Keystone; projects, users, catalog; unified limits
glance      glance-api with the rbd store
cinder      cinder-api, -scheduler, -volume; volume types, quotas
clients     openrc files for the CLIs
health      the `status` table
cli         the commands

Stdlib only: it runs with the system python3, before the venv exists.
"""

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

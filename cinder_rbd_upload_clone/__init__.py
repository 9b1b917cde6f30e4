"""Copy-on-write upload of Cinder RBD volumes to Glance rbd images."""

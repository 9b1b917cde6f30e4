#!/bin/bash
# cinder-rbd-upload-clone: DevStack plugin.
#
# stack install      installs this package where Cinder runs
# stack post-config  the driver and its options in each ceph backend of
#                    cinder.conf, [glance] and [service_user], the admin
#                    role for Cinder's service user
# stack extra        `cinder-rbd-upload-clone doctor` for each backend
# stack test-config  [rbd_upload_clone] in tempest.conf
#
# Ceph itself, its pools and cephx users come from devstack-plugin-ceph,
# whose keys already hold rwx on every pool it made: client.cinder may
# write the images pool, client.glance may read the volumes pool.

function rbd_upload_clone_backends {
    # Names of the backends of type ceph in RBD_UPLOAD_CLONE_BACKENDS.
    local be
    for be in ${RBD_UPLOAD_CLONE_BACKENDS//,/ }; do
        if [[ "${be%%:*}" == "ceph" ]]; then
            echo "${be##*:}"
        fi
    done
}

function install_rbd_upload_clone {
    setup_develop $RBD_UPLOAD_CLONE_DIR
}

function configure_rbd_upload_clone {
    if [[ "$GLANCE_ENABLE_MULTIPLE_STORES" != "True" ]]; then
        die $LINENO "cinder-rbd-upload-clone needs GLANCE_ENABLE_MULTIPLE_STORES=True"
    fi
    local be_name
    for be_name in $(rbd_upload_clone_backends); do
        iniset $CINDER_CONF $be_name volume_driver $RBD_UPLOAD_CLONE_DRIVER
        iniset $CINDER_CONF $be_name enable_clone_optimization $RBD_UPLOAD_CLONE_ENABLED
        iniset $CINDER_CONF $be_name clone_upload_flatten $RBD_UPLOAD_CLONE_FLATTEN
        iniset $CINDER_CONF $be_name clone_upload_gc_interval $RBD_UPLOAD_CLONE_GC_INTERVAL
    done
    # Cinder's own credentials for the store list, the collector's image
    # checks and the second registration attempt.
    configure_keystoneauth $CINDER_CONF cinder glance
    # The location API needs the user's token plus a service token.
    iniset $CINDER_CONF service_user send_service_user_token True
    configure_keystoneauth $CINDER_CONF cinder service_user
    # The collector asks Glance about images of every project.
    get_or_add_user_project_role admin cinder $SERVICE_PROJECT_NAME \
        $SERVICE_DOMAIN_NAME $SERVICE_DOMAIN_NAME
}

function check_rbd_upload_clone {
    local be_name
    for be_name in $(rbd_upload_clone_backends); do
        if ! cinder-rbd-upload-clone doctor --config-file $CINDER_CONF \
                --backend $be_name; then
            if [[ "$RBD_UPLOAD_CLONE_DOCTOR_STRICT" == "True" ]]; then
                die $LINENO "cinder-rbd-upload-clone doctor failed for $be_name"
            fi
            warn $LINENO "cinder-rbd-upload-clone doctor failed for $be_name: uploads take the generic copy"
        fi
    done
}

function configure_tempest_rbd_upload_clone {
    iniset $TEMPEST_CONFIG rbd_upload_clone enabled True
    iniset $TEMPEST_CONFIG rbd_upload_clone expect_clone $RBD_UPLOAD_CLONE_ENABLED
    iniset $TEMPEST_CONFIG rbd_upload_clone admin_location_checks $RBD_UPLOAD_CLONE_TEMPEST_ADMIN_CHECKS
    iniset $TEMPEST_CONFIG rbd_upload_clone collector_timeout $((RBD_UPLOAD_CLONE_GC_INTERVAL + 60))
}

if [[ "$1" == "stack" && "$2" == "install" ]]; then
    echo_summary "Installing cinder-rbd-upload-clone"
    install_rbd_upload_clone
elif [[ "$1" == "stack" && "$2" == "post-config" ]]; then
    if is_service_enabled cinder; then
        echo_summary "Configuring cinder-rbd-upload-clone"
        configure_rbd_upload_clone
    fi
elif [[ "$1" == "stack" && "$2" == "extra" ]]; then
    if is_service_enabled c-vol && [[ "$RBD_UPLOAD_CLONE_DOCTOR" == "True" ]]; then
        echo_summary "Checking cinder-rbd-upload-clone"
        check_rbd_upload_clone
    fi
elif [[ "$1" == "stack" && "$2" == "test-config" ]]; then
    if is_service_enabled tempest; then
        echo_summary "Configuring Tempest for cinder-rbd-upload-clone"
        configure_tempest_rbd_upload_clone
    fi
fi

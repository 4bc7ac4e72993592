#!/usr/bin/env bash
# The kafka service's start (docker-compose.yml), in place of the image's
# own, which formats the storage without a SCRAM credential: on a broker
# whose every client signs in with SCRAM, the admin has to exist from the
# start, so it is created when the storage is formatted (KRaft keeps the
# SCRAM users in its metadata log). scripts/kafka/broker.sh start --secure
# is the same recipe outside Docker. It
#   1. writes server.properties from the KAFKA_* variables, named as the
#      image names them (KAFKA_LOG_DIRS is log.dirs; in a name, ___ is -,
#      __ is _ and _ is .),
#   2. adds the SCRAM login of each SASL listener, the admin's (the broker
#      signs in with it on the inter-broker listener), with the password of
#      its secret file,
#   3. formats the storage on its first start with the admin's
#      SCRAM-SHA-512 credential; a formatted one is left as it is,
#   4. and runs the broker.
# The configuration holds the admin's password: it is written, 0600, to
# CONFIG_DIR, a tmpfs in compose, with the admin's client settings for the
# healthcheck and the tools (admin.properties).
set -euo pipefail

home=${KAFKA_HOME:-/opt/kafka}
config_dir=${CONFIG_DIR:-/tmp/kafka}
admin_file=${ADMIN_PASSWORD_FILE:-/run/secrets/kafka_user_admin_password}
: "${CLUSTER_ID:?CLUSTER_ID is not set}"
: "${KAFKA_LISTENER_SECURITY_PROTOCOL_MAP:?KAFKA_LISTENER_SECURITY_PROTOCOL_MAP is not set}"

# Variables of the scripts of bin/, not properties of the broker.
skip=" KAFKA_HOME KAFKA_HEAP_OPTS KAFKA_OPTS KAFKA_JMX_OPTS KAFKA_JVM_PERFORMANCE_OPTS KAFKA_GC_LOG_OPTS KAFKA_LOG4J_OPTS KAFKA_DEBUG KAFKA_VERSION "

# properties prints a line key=value per KAFKA_* variable.
properties() {
	local name key
	for name in $(compgen -e | grep '^KAFKA_' | sort); do
		case $skip in *" $name "*) continue ;; esac
		key=${name#KAFKA_}
		key=${key,,}
		key=${key//___/-}
		key=${key//__/%}
		key=${key//_/.}
		key=${key//%/_}
		printf '%s=%s\n' "$key" "${!name}"
	done
}

password=$(tr -d '\r\n' <"$admin_file")
[ -n "$password" ] || {
	echo "start.sh: $admin_file is empty" >&2
	exit 1
}
login="org.apache.kafka.common.security.scram.ScramLoginModule required username=\"admin\" password=\"$password\";"

umask 077
mkdir -p "$config_dir"
{
	echo "# Written by deploy/kafka/start.sh from the KAFKA_* variables."
	properties
	for entry in ${KAFKA_LISTENER_SECURITY_PROTOCOL_MAP//,/ }; do
		listener=${entry%%:*}
		case ${entry#*:} in
		SASL_*) echo "listener.name.${listener,,}.scram-sha-512.sasl.jaas.config=$login" ;;
		esac
	done
} >"$config_dir/server.properties"
{
	echo "# The admin's client settings: --command-config $config_dir/admin.properties"
	echo "security.protocol=SASL_SSL"
	echo "sasl.mechanism=SCRAM-SHA-512"
	echo "sasl.jaas.config=$login"
	echo "ssl.truststore.type=PEM"
	echo "ssl.truststore.location=${KAFKA_SSL_TRUSTSTORE_LOCATION:?KAFKA_SSL_TRUSTSTORE_LOCATION is not set}"
} >"$config_dir/admin.properties"

"$home/bin/kafka-storage.sh" format --ignore-formatted --cluster-id "$CLUSTER_ID" \
	--config "$config_dir/server.properties" \
	--add-scram "SCRAM-SHA-512=[name=admin,password=$password]"
exec "$home/bin/kafka-server-start.sh" "$config_dir/server.properties"

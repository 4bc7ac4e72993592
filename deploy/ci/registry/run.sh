#!/bin/bash
# The registry stand-in's start (deploy/ci/registry/Dockerfile), in place
# of Confluent's /etc/confluent/docker/run: Apicurio Registry on
# 127.0.0.1:8080, its global compatibility set to BACKWARD (Confluent's
# default; Apicurio's is NONE), then nginx on the port of
# SCHEMA_REGISTRY_LISTENERS, which serves the Confluent API at the root.
# With SCHEMA_REGISTRY_AUTHENTICATION_METHOD=BASIC, nginx asks for the users
# of the file the JAAS configuration in SCHEMA_REGISTRY_OPTS names
# (`<user>: <password>,<role>...`) that have one of
# SCHEMA_REGISTRY_AUTHENTICATION_ROLES. The SCHEMA_REGISTRY_KAFKASTORE_*
# variables are not read: Apicurio keeps the schemas in memory.
set -euo pipefail

listener=${SCHEMA_REGISTRY_LISTENERS:-http://0.0.0.0:8081}
port=${listener##*:}
work=/tmp/registry
mkdir -p "$work"
chmod 0700 "$work"

auth=""
if [ "${SCHEMA_REGISTRY_AUTHENTICATION_METHOD:-NONE}" = BASIC ]; then
	jaas=$(sed -n 's/.*-Djava\.security\.auth\.login\.config=\([^ ]*\).*/\1/p' <<<"${SCHEMA_REGISTRY_OPTS:-}")
	users=$(sed -n 's/.*file="\([^"]*\)".*/\1/p' "${jaas:?BASIC authentication needs -Djava.security.auth.login.config in SCHEMA_REGISTRY_OPTS}")
	allowed=" ${SCHEMA_REGISTRY_AUTHENTICATION_ROLES//,/ } "
	: >"$work/htpasswd"
	while IFS= read -r line || [ -n "$line" ]; do
		case $line in '' | '#'*) continue ;; esac
		user=${line%%:*}
		rest=${line#*:}
		rest=${rest#"${rest%%[! ]*}"}
		password=${rest%%,*}
		IFS=', ' read -ra roles <<<"${rest#"$password"}"
		for role in "${roles[@]}"; do
			case $allowed in *" $role "*)
				printf '%s:{PLAIN}%s\n' "$user" "$password" >>"$work/htpasswd"
				break
				;;
			esac
		done
	done <"${users:?no file= in $jaas}"
	auth="auth_basic \"${SCHEMA_REGISTRY_AUTHENTICATION_REALM:-SchemaRegistry}\"; auth_basic_user_file $work/htpasswd;"
fi

# The shell is the container's first process, which ignores a signal it
# has no handler for: docker stop's SIGTERM is passed on.
pids=()
trap 'kill -TERM "${pids[@]}" 2>/dev/null; wait; exit 143' TERM INT

java ${REGISTRY_HEAP_OPTS:--Xmx384m} -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port=8080 \
	-jar /opt/apicurio/apicurio-registry-app-*-runner.jar &
registry=$!
pids+=("$registry")
api=http://127.0.0.1:8080/apis/ccompat/v7
until curl -fsS -o /dev/null "$api/subjects"; do
	kill -0 "$registry" 2>/dev/null || exit 1
	sleep 1
done
curl -fsS -o /dev/null -X PUT -H 'Content-Type: application/vnd.schemaregistry.v1+json' \
	--data '{"compatibility":"BACKWARD"}' "$api/config"

cat >"$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
daemon off;
events {}
http {
	access_log off;
	client_body_temp_path $work/body;
	proxy_temp_path $work/proxy;
	fastcgi_temp_path $work/fastcgi;
	uwsgi_temp_path $work/uwsgi;
	scgi_temp_path $work/scgi;
	client_max_body_size 16m;
	server {
		listen $port;
		$auth
		location / {
			proxy_pass $api/;
			proxy_set_header Authorization "";
		}
	}
}
CONF
nginx -e stderr -c "$work/nginx.conf" &
pids+=($!)
# The container ends when either ends, so that its restart policy starts both.
wait -n

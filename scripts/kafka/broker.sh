#!/usr/bin/env bash
# One real Apache Kafka broker (KRaft, combined broker and controller) on
# 127.0.0.1, run from the Kafka jars on Maven Central: the real-broker test
# tier. See README.md beside this file.
#
#   broker.sh fetch                                jars into <repo>/.cache/kafka/lib
#   broker.sh version                              the Kafka version used
#   broker.sh start [--port 39092] [--dir DIR] [--secure]
#                                                  fresh storage, start, wait until ready;
#                                                  --secure: SASL_SSL, SCRAM-SHA-512, ACLs
#   broker.sh stop [--dir DIR]                     SIGTERM, SIGKILL after 30 s
#   broker.sh restart [--dir DIR]                  stop, then start again on the same port
#                                                  and storage (topics, groups and
#                                                  transactions kept)
#   broker.sh status [--dir DIR]                   exit 0 when running, 3 when not
#   broker.sh tool CLASS [ARGS]                    a Kafka tool from the jars, e.g.
#       broker.sh tool TopicCommand --bootstrap-server 127.0.0.1:39092 --list
#
# start prints KAFKA_BROKERS=127.0.0.1:PORT on stdout; everything else goes
# to stderr. With --secure it prints the admin's client variables too
# (KAFKA_TLS, KAFKA_TLS_CA_FILE, KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME,
# KAFKA_SASL_PASSWORD_FILE), ready for eval. KAFKA_VERSION overrides the version pinned in pom.xml and
# KAFKA_HEAP_OPTS the broker's heap.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=../lib/proc.sh
. "$here/../lib/proc.sh"
cache="$root/.cache/kafka"
lib="$cache/lib"
port=39092
dir="$cache/run"
secure=false
# Any valid KRaft cluster id will do: a fixed one saves a JVM start.
cluster_id=ZGF0YW1pbGwtdGVzdHMtMQ
ready_timeout=${KAFKA_READY_TIMEOUT:-90}
stop_timeout=30

say() { echo "broker.sh: $*" >&2; }
die() {
	say "$*"
	exit 1
}

version() {
	if [ -n "${KAFKA_VERSION:-}" ]; then
		echo "$KAFKA_VERSION"
	else
		sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml"
	fi
}

# stamp names what lib holds: the version and pom.xml's checksum, so that
# an edited pom.xml (another logging binding, an exclusion) fetches again.
stamp() {
	local sum
	sum=$(cksum <"$here/pom.xml")
	echo "$(version) ${sum%% *}"
}

fetched() {
	[ -f "$lib/.fetched" ] && [ "$(cat "$lib/.fetched")" = "$(stamp)" ]
}

# fetch copies the jars into a fresh directory and swaps it in only when
# mvn succeeded, so an interrupted fetch never leaves a half-filled lib that
# a later run would take as complete.
fetch() {
	fetched && return 0
	command -v mvn >/dev/null || die "mvn is needed to fetch Kafka (apt-get install maven)"
	mkdir -p "$cache"
	# Two fetches at once (two make runs in one checkout) must not
	# interleave. The lock is released before returning: start runs the
	# broker next, which would otherwise inherit it for its whole life.
	if command -v flock >/dev/null; then
		exec 9>"$cache/fetch.lock"
		flock 9
		if fetched; then
			exec 9>&-
			return 0
		fi
	fi
	local v tmp
	v=$(version)
	tmp="$cache/lib.tmp.$$"
	say "fetching Apache Kafka $v from Maven Central into $lib"
	rm -rf "$tmp"
	if ! mvn -q -B -Dstyle.color=never -f "$here/pom.xml" -Dkafka.version="$v" \
		dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" \
		>"$cache/fetch.log" 2>&1; then
		rm -rf "$tmp"
		tail -n 50 "$cache/fetch.log" | sed 's/\x1b\[[0-9;]*m//g' >&2
		die "fetch failed (full log: $cache/fetch.log)"
	fi
	[ -f "$tmp/kafka_2.13-$v.jar" ] || die "mvn ran but kafka_2.13-$v.jar is missing from $tmp"
	stamp >"$tmp/.fetched"
	rm -rf "$lib.old"
	if [ -d "$lib" ]; then mv "$lib" "$lib.old"; fi
	mv "$tmp" "$lib"
	rm -rf "$lib.old"
	exec 9>&-
}

parse() {
	while [ $# -gt 0 ]; do
		case "$1" in
		--port)
			[ $# -ge 2 ] || die "--port needs a value"
			port=$2
			shift 2
			;;
		--port=*) port=${1#--port=} && shift ;;
		--dir)
			[ $# -ge 2 ] || die "--dir needs a value"
			dir=$2
			shift 2
			;;
		--dir=*) dir=${1#--dir=} && shift ;;
		--secure)
			secure=true
			shift
			;;
		*) die "unknown option $1" ;;
		esac
	done
	case "$port" in
	'' | *[!0-9]*) die "--port must be a number, not '$port'" ;;
	esac
	if [ "$port" -lt 1 ] || [ "$port" -gt 65534 ]; then
		die "--port must be in 1..65534 (the controller takes PORT+1)"
	fi
	if [ -d "$dir" ]; then dir=$(cd "$dir" && pwd -P); fi
}

# pid prints the broker's pid when it is alive and really is the broker of
# this directory.
pid() { pid_of "$dir/broker.pid" "kafka.Kafka $dir/server.properties"; }

# commands sets the java command lines, once DIR is final.
commands() {
	# shellcheck disable=SC2206 # KAFKA_HEAP_OPTS is a list of flags
	local heap=(${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m})
	broker=(java "${heap[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError
		-Djava.awt.headless=true -Dlog4j2.configurationFile="$dir/log4j2.properties" -cp "$lib/*")
}

# The command-line tools: small heap and C1 only, for a fast start. Without
# a log4j2 configuration they log errors only.
tool=(java -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Djava.awt.headless=true -cp "$lib/*")

# run_tool runs a Kafka tool class from the jars; names outside org. and
# kafka. are taken from org.apache.kafka.tools (TopicCommand,
# consumer.group.ConsumerGroupCommand, TransactionsCommand, ...).
run_tool() {
	[ $# -gt 0 ] || usage
	fetch
	local class=$1
	shift
	case "$class" in
	org.* | kafka.*) ;;
	*) class=org.apache.kafka.tools.$class ;;
	esac
	exec "${tool[@]}" "$class" "$@"
}

# now prints the time in milliseconds.
now() {
	local t=${EPOCHREALTIME/./}
	echo $((t / 1000))
}

# make_tls makes, with openssl, the broker's CA and its certificate for
# 127.0.0.1 and localhost, as PEM files Kafka reads (ssl.keystore.type=PEM:
# the PKCS#8 key, then the certificate), in DIR/tls.
make_tls() {
	command -v openssl >/dev/null || die "openssl is needed for --secure"
	local tls="$dir/tls"
	mkdir -p "$tls"
	chmod 700 "$tls"
	(
		cd "$tls"
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
			-keyout ca-key.pem -out ca.pem -subj "/CN=datamill test broker CA" \
			-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-keyout broker-key.pem -out broker.csr -subj "/CN=kafka"
		printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' >broker.ext
		openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 30 \
			-extfile broker.ext -out broker.pem
		cat broker-key.pem broker.pem >keystore.pem
		chmod 600 ./*key.pem keystore.pem
	) >"$dir/tls.log" 2>&1 || {
		cat "$dir/tls.log" >&2
		die "making the broker's certificates failed"
	}
}

# admin_password prints the admin's password, made by start --secure: the
# admin is created at format time and is the one super user besides the
# broker itself.
admin_password() { cat "$dir/admin.password"; }

# write_secure_config turns the plain configuration into a secure one:
# clients on SASL_SSL with SCRAM-SHA-512 only; the controller listener on
# TLS with client certificates, where only the broker's own certificate
# (User:CN=kafka) gets in; StandardAuthorizer denying what no ACL allows.
write_secure_config() {
	local pass
	pass=$(admin_password)
	sed -i -e "s|^listeners=.*|listeners=SASL_SSL://127.0.0.1:$port,CONTROLLER://127.0.0.1:$((port + 1))|" \
		-e "s|^advertised.listeners=.*|advertised.listeners=SASL_SSL://127.0.0.1:$port|" \
		-e "s|^inter.broker.listener.name=.*|inter.broker.listener.name=SASL_SSL|" \
		-e "s|^listener.security.protocol.map=.*|listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SSL|" \
		"$dir/server.properties"
	cat >>"$dir/server.properties" <<EOF

# Security (start --secure).
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$pass";
ssl.keystore.type=PEM
ssl.keystore.location=$dir/tls/keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$dir/tls/ca.pem
listener.name.controller.ssl.client.auth=required
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin;User:CN=kafka
allow.everyone.if.no.acl.found=false
EOF
	cat >"$dir/admin.properties" <<EOF
# The admin's client settings, for the tools: --command-config $dir/admin.properties
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$pass";
ssl.truststore.type=PEM
ssl.truststore.location=$dir/tls/ca.pem
EOF
	cat >>"$dir/log4j2.properties" <<EOF
# The authorizer's decisions, denials at INFO: Kafka's audit trail.
appender.authorizer.type=File
appender.authorizer.name=authorizer
appender.authorizer.fileName=$dir/kafka-authorizer.log
appender.authorizer.layout.type=PatternLayout
appender.authorizer.layout.pattern=[%d] %p %m (%c)%n
logger.authorizer.name=kafka.authorizer.logger
logger.authorizer.level=INFO
logger.authorizer.additivity=false
logger.authorizer.appenderRef.authorizer.ref=authorizer
EOF
	chmod 600 "$dir/server.properties" "$dir/admin.properties"
}

write_config() {
	cat >"$dir/server.properties" <<EOF
# Written by scripts/kafka/broker.sh: one combined broker and controller for tests.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$((port + 1))
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$((port + 1))
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data

# Topics: tests create their own, three partitions unless they say otherwise.
auto.create.topics.enable=false
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
log.segment.bytes=1048576
log.index.size.max.bytes=1048576
log.retention.hours=4
log.cleaner.dedupe.buffer.size=16777216

# Internal topics on one broker.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=3
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1

# Groups: no initial rebalance delay, and short sessions allowed.
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=500

# Two cores: few threads.
num.network.threads=2
num.io.threads=4
background.threads=4
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
EOF
	cat >"$dir/log4j2.properties" <<'EOF'
# The broker writes to its stdout, which is DIR/broker.log.
status=warn
appender.out.type=Console
appender.out.name=out
appender.out.target=SYSTEM_OUT
appender.out.layout.type=PatternLayout
appender.out.layout.pattern=[%d] %p %m (%c)%n
rootLogger.level=INFO
rootLogger.appenderRef.out.ref=out
logger.statechange.name=state.change.logger
logger.statechange.level=WARN
logger.request.name=kafka.request.logger
logger.request.level=WARN
EOF
}

fail_start() {
	trap - INT TERM
	say "$*; last lines of $dir/broker.log:"
	tail -n 50 "$dir/broker.log" >&2 2>/dev/null || true
	stop_pid "$bpid"
	rm -f "$dir/broker.pid"
	exit 1
}

# start starts a broker on fresh storage; with "keep" (restart), on the
# storage and port of DIR's last broker.
start() {
	local keep=${1:-}
	command -v java >/dev/null || die "java (17 or newer) is needed to run Kafka"
	fetch
	local p
	if p=$(pid); then
		die "a broker is already running from $dir (pid $p): broker.sh stop --dir $dir"
	fi
	# A broker left on the port by someone else would answer our readiness
	# check: refuse instead.
	listening "$port" && die "127.0.0.1:$port is already in use"
	listening $((port + 1)) && die "127.0.0.1:$((port + 1)) (the controller port) is already in use"

	# A restart keeps the mode the broker was started in.
	if [ "$keep" = keep ] && [ -f "$dir/admin.properties" ]; then
		secure=true
	fi
	local check=()
	if [ "$secure" = true ]; then
		check=(--command-config "$dir/admin.properties")
	fi
	local t0 t0ms
	t0=$SECONDS
	t0ms=$(now)
	commands
	if [ "$keep" = keep ]; then
		[ -f "$dir/server.properties" ] && [ -d "$dir/data" ] ||
			die "$dir holds no broker to restart: broker.sh start --dir $dir"
	else
		# DIR is wiped so that every run starts empty; never wipe a
		# directory that is not ours (--dir ~ by mistake).
		if [ -d "$dir" ] && [ -n "$(ls -A "$dir")" ] && [ ! -f "$dir/server.properties" ]; then
			die "$dir is not empty and holds no server.properties: refusing to wipe it"
		fi
		rm -rf "$dir"
		mkdir -p "$dir"
		dir=$(cd "$dir" && pwd -P)
		write_config
		local scram=()
		if [ "$secure" = true ]; then
			make_tls
			(umask 077 && openssl rand -hex 16 >"$dir/admin.password")
			write_secure_config
			scram=(--add-scram "SCRAM-SHA-512=[name=admin,password=$(admin_password)]")
		fi
		echo "$port" >"$dir/broker.port"
		if ! "${tool[@]}" kafka.tools.StorageTool format --standalone --cluster-id "$cluster_id" \
			--config "$dir/server.properties" "${scram[@]}" >"$dir/format.log" 2>&1; then
			cat "$dir/format.log" >&2
			die "formatting the KRaft storage failed"
		fi
	fi

	# A simple command in the background: $! is java's own pid. (Started
	# from a script, it ignores SIGINT: Ctrl-C leaves it running, and stop
	# uses SIGTERM.)
	"${broker[@]}" kafka.Kafka "$dir/server.properties" </dev/null >>"$dir/broker.log" 2>&1 &
	bpid=$!
	echo "$bpid" >"$dir/broker.pid"
	trap 'fail_start "interrupted"' INT TERM

	# Ready when the broker answers a metadata request (a topic listing).
	# Until its port accepts connections, poll cheaply from the shell.
	local deadline=$((t0 + ready_timeout)) left
	while :; do
		# (Not pid: until java has replaced the forked shell, its command
		# line is not the broker's yet.)
		alive "$bpid" || fail_start "the broker exited during start-up"
		left=$((deadline - SECONDS))
		[ "$left" -gt 0 ] || fail_start "the broker was not ready after ${ready_timeout}s"
		# Each try is cut at 20 s: a tool that failed without exiting
		# (it happens) must not use up the whole wait.
		if listening "$port" && timeout -k 2 "$((left < 20 ? left : 20))" \
			"${tool[@]}" org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$port" --list "${check[@]}" \
			>"$dir/ready.log" 2>&1; then
			break
		fi
		# A tool that cannot even load its classes (jars of two Kafka
		# versions mixed in lib) will not get better by waiting.
		if grep -sqE 'NoClassDefFoundError|ClassNotFoundException|UnsupportedClassVersionError' "$dir/ready.log"; then
			cat "$dir/ready.log" >&2
			fail_start "the readiness check (TopicCommand) cannot run from $lib"
		fi
		sleep 0.2
	done
	trap - INT TERM
	local ms=$(($(now) - t0ms))
	say "Apache Kafka $(version) ready on 127.0.0.1:$port in $((ms / 1000)).$((ms % 1000 / 100)) s (pid $(cat "$dir/broker.pid"), log $dir/broker.log)"
	echo "KAFKA_BROKERS=127.0.0.1:$port"
	if [ "$secure" = true ]; then
		say "secure: SASL_SSL with SCRAM-SHA-512 and ACLs; tools take --command-config $dir/admin.properties; denials go to $dir/kafka-authorizer.log"
		echo "KAFKA_TLS=true"
		echo "KAFKA_TLS_CA_FILE=$dir/tls/ca.pem"
		echo "KAFKA_SASL_MECHANISM=SCRAM-SHA-512"
		echo "KAFKA_SASL_USERNAME=admin"
		echo "KAFKA_SASL_PASSWORD_FILE=$dir/admin.password"
	fi
}

stop() {
	local p
	if p=$(pid); then
		stop_pid "$p"
	fi
	rm -f "$dir/broker.pid"
}

# stop_pid stops process $1: SIGTERM (a clean shutdown takes 2-3 s), SIGKILL
# if it is still there after stop_timeout seconds.
stop_pid() {
	local p=$1 i
	kill -TERM "$p" 2>/dev/null || return 0
	for ((i = 0; i < stop_timeout * 5; i++)); do
		alive "$p" || return 0
		sleep 0.2
	done
	say "the broker (pid $p) did not stop within ${stop_timeout}s: SIGKILL"
	kill -KILL "$p" 2>/dev/null || true
	while alive "$p"; do sleep 0.1; done
}

# restart stops DIR's broker and starts it again on its port and storage.
restart() {
	[ -f "$dir/broker.port" ] || die "$dir holds no broker to restart: broker.sh start --dir $dir"
	port=$(cat "$dir/broker.port")
	stop
	# The ports are free once the old process is gone; start checks.
	start keep
}

status() {
	local p
	if p=$(pid); then
		echo "running: pid $p, KAFKA_BROKERS=127.0.0.1:$(cat "$dir/broker.port" 2>/dev/null || echo '?'), dir $dir"
	else
		echo "stopped"
		return 3
	fi
}

usage() {
	echo "usage: broker.sh fetch | version | start [--port P] [--dir D] [--secure] | stop [--dir D] | restart [--dir D] | status [--dir D] | tool CLASS [ARGS]" >&2
	exit 2
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
fetch | version)
	[ $# -eq 0 ] || usage
	"$cmd"
	;;
tool) run_tool "$@" ;;
start | stop | restart | status)
	parse "$@"
	"$cmd"
	;;
*) usage ;;
esac

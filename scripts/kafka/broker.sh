#!/usr/bin/env bash
# Runs one real Apache Kafka broker (KRaft, combined broker and controller)
# on 127.0.0.1 from jars fetched from Maven Central, for the real-broker
# test tier. See README.md beside this file.
#
#   broker.sh fetch                          jars into <repo>/.cache/kafka/lib
#   broker.sh start [--port 39092] [--dir D] format storage, start, wait until ready
#   broker.sh stop [--dir D]                 stop it
#   broker.sh status [--dir D]
#   broker.sh version
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
lib="$root/.cache/kafka/lib"
port=39092
dir="$root/.cache/kafka/run"

version() {
	sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml"
}

fetch() {
	local v
	v=$(version)
	if [ -f "$lib/kafka_2.13-$v.jar" ]; then
		return 0
	fi
	command -v mvn >/dev/null || { echo "broker.sh: mvn is needed to fetch Kafka (apt-get install maven)" >&2; exit 1; }
	echo "broker.sh: fetching Apache Kafka $v from Maven Central into $lib"
	rm -rf "$lib"
	mkdir -p "$(dirname "$lib")"
	if ! mvn -q -B -Dstyle.color=never -f "$here/pom.xml" dependency:copy-dependencies \
		-DoutputDirectory="$lib" -DincludeScope=runtime >"$(dirname "$lib")/fetch.log" 2>&1; then
		cat "$(dirname "$lib")/fetch.log" >&2
		exit 1
	fi
}

parse() {
	while [ $# -gt 0 ]; do
		case "$1" in
		--port) port=$2; shift 2 ;;
		--dir) dir=$2; shift 2 ;;
		*) echo "broker.sh: unknown option $1" >&2; exit 2 ;;
		esac
	done
}

running() {
	[ -f "$dir/broker.pid" ] && kill -0 "$(cat "$dir/broker.pid")" 2>/dev/null
}

start() {
	fetch
	if running; then
		echo "broker.sh: already running (pid $(cat "$dir/broker.pid"))" >&2
		exit 1
	fi
	rm -rf "$dir"
	mkdir -p "$dir/logs"
	cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$((port + 1))
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$((port + 1))
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/logs
num.partitions=3
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=3
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=500
log.segment.bytes=16777216
log.retention.hours=2
num.network.threads=2
num.io.threads=4
PROPS
	cat >"$dir/log4j2.properties" <<PROPS
rootLogger.level=WARN
rootLogger.appenderRef.file.ref=file
appender.file.type=File
appender.file.name=file
appender.file.fileName=$dir/broker.log
appender.file.layout.type=PatternLayout
appender.file.layout.pattern=[%d] %p %m (%c)%n
logger.kafka.name=kafka
logger.kafka.level=INFO
PROPS
	local java=(java -Xms128m -Xmx512m -XX:+UseG1GC -Dlog4j2.configurationFile="$dir/log4j2.properties" -cp "$lib/*")
	"${java[@]}" kafka.tools.StorageTool format --standalone \
		--cluster-id "$("${java[@]}" kafka.tools.StorageTool random-uuid)" \
		--config "$dir/server.properties" >"$dir/format.log" 2>&1 || {
		cat "$dir/format.log" >&2
		exit 1
	}
	local started=$SECONDS
	nohup "${java[@]}" kafka.Kafka "$dir/server.properties" >"$dir/stdout.log" 2>&1 &
	echo $! >"$dir/broker.pid"
	until "${java[@]}" org.apache.kafka.tools.BrokerApiVersionsCommand --bootstrap-server "127.0.0.1:$port" >/dev/null 2>&1; do
		if ! running || [ $((SECONDS - started)) -gt 90 ]; then
			echo "broker.sh: the broker did not become ready; last lines of its logs:" >&2
			tail -n 50 "$dir/stdout.log" "$dir/broker.log" >&2 2>/dev/null || true
			stop
			exit 1
		fi
		sleep 1
	done
	echo "broker.sh: Apache Kafka $(version) ready on 127.0.0.1:$port in $((SECONDS - started)) s (pid $(cat "$dir/broker.pid"))" >&2
	echo "KAFKA_BROKERS=127.0.0.1:$port"
}

stop() {
	running || { rm -f "$dir/broker.pid"; return 0; }
	local pid
	pid=$(cat "$dir/broker.pid")
	kill -TERM "$pid"
	for _ in $(seq 30); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 1
	done
	kill -KILL "$pid" 2>/dev/null || true
	rm -f "$dir/broker.pid"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
fetch) fetch ;;
version) version ;;
start) parse "$@"; start ;;
stop) parse "$@"; stop ;;
status) parse "$@"; if running; then echo "running (pid $(cat "$dir/broker.pid"))"; else echo "stopped"; exit 1; fi ;;
*) echo "usage: broker.sh fetch|version|start [--port P] [--dir D]|stop [--dir D]|status [--dir D]" >&2; exit 2 ;;
esac

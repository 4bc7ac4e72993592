"""A third-party client against datamill: Confluent's legacy Avro producer
and consumer (Debian's python3-confluent-kafka), through the schema registry.

  avro_interop.py produce BROKERS REGISTRY RAW_SCHEMA COUNT
      publishes COUNT users to raw.users (plus one without an id, which the
      cleaner must dead-letter), keyed by id as an Avro string, as datamill
      keys its topics
  avro_interop.py consume BROKERS REGISTRY TOPIC COUNT GROUP
      reads COUNT committed records of TOPIC from its start and prints each
      value as a JSON line

The broker's TLS and SASL settings, when it has them, come from the
datamill variables KAFKA_TLS, KAFKA_TLS_CA_FILE and KAFKA_SASL_MECHANISM,
KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD of the environment.

Run with /usr/bin/python3 (Debian's packages).
"""

import datetime
import json
import os
import sys
import time

from confluent_kafka import avro
from confluent_kafka.avro import AvroConsumer, AvroProducer


def security():
    """librdkafka's settings for the KAFKA_* variables of the environment."""
    conf = {}
    tls = os.environ.get("KAFKA_TLS") == "true"
    mechanism = os.environ.get("KAFKA_SASL_MECHANISM", "")
    if mechanism:
        conf["security.protocol"] = "SASL_SSL" if tls else "SASL_PLAINTEXT"
        conf["sasl.mechanisms"] = mechanism
        conf["sasl.username"] = os.environ.get("KAFKA_SASL_USERNAME", "")
        conf["sasl.password"] = os.environ.get("KAFKA_SASL_PASSWORD", "")
    elif tls:
        conf["security.protocol"] = "SSL"
    if tls and os.environ.get("KAFKA_TLS_CA_FILE"):
        conf["ssl.ca.location"] = os.environ["KAFKA_TLS_CA_FILE"]
    return conf


def produce(brokers, registry, schema_path, count):
    with open(schema_path) as f:
        value_schema = avro.loads(f.read())
    key_schema = avro.loads('"string"')
    producer = AvroProducer(
        {
            "bootstrap.servers": brokers,
            "schema.registry.url": registry,
            # The Java clients' (and franz-go's) key hashing, so that a
            # user's records land on the partition datamill's own
            # producers use for it.
            "partitioner": "murmur2_random",
            **security(),
        },
        default_key_schema=key_schema,
        default_value_schema=value_schema,
    )
    now = datetime.datetime.now(datetime.timezone.utc)
    countries = [" FR ", "Allemagne", "it", "España"]
    for i in range(1, count + 1):
        value = {
            "id": str(i),
            "age": str(20 + i % 50),
            "gender": ["F", "male", " Homme "][i % 3],
            "country": countries[i % len(countries)],
            "city": None,
            "email": "User%d@Example.ORG" % i,
            "signup_date": "2024-01-%02d" % (1 + i % 28),
            "last_login": None,
            "account_status": "active",
            "monthly_spend": "€%d,50" % i,
            "event_id": "python-%d" % i,
            "source": "python-confluent-kafka",
            "ingested_at": now + datetime.timedelta(microseconds=i),
        }
        producer.produce(topic="raw.users", key=str(i), value=value)
    # No id: the cleaner must send it to dlq.users.
    producer.produce(topic="raw.users", key="none", value={
        "id": None, "age": "30", "gender": None, "country": None, "city": None,
        "email": None, "signup_date": None, "last_login": None,
        "account_status": None, "monthly_spend": None,
        "event_id": "python-no-id", "source": "python-confluent-kafka",
        "ingested_at": now,
    })
    left = producer.flush(30)
    if left:
        sys.exit("%d records not delivered" % left)


def plain(v):
    if isinstance(v, (datetime.date, datetime.datetime)):
        return v.isoformat()
    return str(v)


def consume(brokers, registry, topic, count, group):
    consumer = AvroConsumer({
        "bootstrap.servers": brokers,
        "schema.registry.url": registry,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        **security(),
    })
    consumer.subscribe([topic])
    seen = 0
    deadline = time.time() + 60
    while seen < count and time.time() < deadline:
        msg = consumer.poll(1.0)
        if msg is None:
            continue
        if msg.error():
            sys.exit("consume: %s" % msg.error())
        print(json.dumps(msg.value(), default=plain), flush=True)
        seen += 1
    consumer.close()
    if seen < count:
        sys.exit("read %d of %d records of %s within 60 s" % (seen, count, topic))


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "produce":
        produce(args[0], args[1], args[2], int(args[3]))
    elif mode == "consume":
        consume(args[0], args[1], args[2], int(args[3]), args[4])
    else:
        sys.exit("unknown mode %r" % mode)

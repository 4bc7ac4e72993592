"""A seed-style consumer of raw.users: the shape the pipeline had before datamill.

One Python process does what datamill's cleaner, loader and scorer do, the way a
team would have written it: a kafka-python KafkaConsumer in a consumer group
reads raw.users (Confluent wire format: the Avro schema fetched from the
registry by its id, decoded with fastavro), cleans each record in Python with
the rules the users dataset declares (schemas/avro/users/clean.avsc: typed,
normalised, invalid optional values set to null and flagged, a record without a
valid id rejected), upserts each batch into PostgreSQL with SQLAlchemy (INSERT
... ON CONFLICT DO UPDATE, the newest event winning), writes the rejects to a
dead-letter table, predicts churn with a scikit-learn pipeline loaded from a
joblib file and writes the predictions, commits the database transaction, then
commits the Kafka offsets: at-least-once. It stops after --events records.

    seed_consumer.py train --csv users.csv --model churn.joblib
    seed_consumer.py consume --events N --model churn.joblib

train fits a scikit-learn LogisticRegression (C = 1, as datamill's l2: 1) on
the features the users dataset declares (age; days since signup and since the
last login, relative to the newest date of the training data; log1p of the
monthly spend; gender and country one-hot with values under 0.5 % of the rows
pooled; numeric values median-filled with a missing indicator, standardised),
on a CSV in the shape of `datamill gen users`. consume prints a JSON summary on
stdout.

Configuration, from the environment, as datamill's services read it:
KAFKA_BROKERS, KAFKA_TLS, KAFKA_TLS_CA_FILE, KAFKA_SASL_MECHANISM,
KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE;
SCHEMA_REGISTRY_URL (SCHEMA_REGISTRY_USERNAME, SCHEMA_REGISTRY_PASSWORD);
DATABASE_URL (a libpq URL: sslmode, sslrootcert and passfile are passed on);
PEER_SCHEMA, the PostgreSQL schema of its tables (default peer).
"""

import argparse
import base64
import csv
import datetime as dt
import decimal
import io
import json
import math
import os
import re
import struct
import sys
import time
import urllib.request

import fastavro
import joblib
import numpy as np
from kafka import KafkaConsumer
from kafka.protocol import sasl
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    MetaData,
    Numeric,
    Table,
    Text,
    create_engine,
    text,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert

HERE = os.path.dirname(os.path.abspath(__file__))
COUNTRIES_TSV = os.path.join(HERE, "..", "..", "pkg", "rules", "countries.tsv")

# --- cleaning: the rules of schemas/avro/users/clean.avsc, by hand ---------

GENDERS = {
    "female": ["f", "w", "woman", "femme", "frau", "weiblich", "mujer", "femenino"],
    "male": ["m", "h", "man", "homme", "herr", "männlich", "hombre", "masculino", "masculin"],
    "other": ["o", "x", "divers", "autre", "non-binary", "nonbinary", "nb"],
}
STATUSES = {
    "active": ["actif", "activo", "aktiv", "enabled", "open"],
    "inactive": ["inactif", "dormant", "idle", "disabled"],
    "churned": ["churn", "cancelled", "canceled", "closed", "résilié", "resilie", "gekündigt"],
    "suspended": ["suspendu", "blocked", "locked"],
}
# Country names beyond the English ones of countries.tsv.
OTHER_COUNTRY_NAMES = {
    "DE": ["Allemagne", "Deutschland", "Alemania", "Germania", "BRD"],
    "FR": ["Frankreich", "Francia", "République française"],
    "ES": ["Espagne", "España", "Spanien", "Spagna"],
    "IT": ["Italie", "Italien", "Italia"],
    "GB": ["UK", "U.K.", "Great Britain", "England", "Royaume-Uni", "Grossbritannien", "Reino Unido"],
    "US": ["USA", "U.S.A.", "U.S.", "US of A", "America", "États-Unis", "Etats-Unis", "Vereinigte Staaten", "Estados Unidos"],
    "NL": ["Holland", "Pays-Bas", "Niederlande", "Países Bajos", "Nederland"],
    "BE": ["Belgique", "Belgien", "België", "Bélgica"],
    "CH": ["Suisse", "Schweiz", "Svizzera", "Suiza"],
    "AT": ["Autriche", "Österreich", "Austria"],
    "PT": ["Portugal"],
    "PL": ["Pologne", "Polen", "Polska", "Polonia"],
    "SE": ["Suède", "Schweden", "Sverige", "Suecia"],
    "BR": ["Brésil", "Brasilien", "Brasil"],
    "CA": ["Kanada", "Canadá"],
    "JP": ["Japon", "Japan", "Nippon", "Japón"],
    "IN": ["Inde", "Indien", "India"],
    "MX": ["Mexique", "Mexiko", "México"],
    "IE": ["Irlande", "Irland", "Éire"],
    "MA": ["Maroc", "Marokko", "Marruecos"],
}
FOLD = str.maketrans({
    **{c: None for c in ". -'_"},
    **{c: "e" for c in "éèêë"}, **{c: "a" for c in "áàâäãå"}, **{c: "i" for c in "íìîï"},
    **{c: "o" for c in "óòôöõ"}, **{c: "u" for c in "úùûü"}, "ç": "c", "ñ": "n",
})
EMAIL = re.compile(r"[a-z0-9._%+-]+@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}")
INTEGER = re.compile(r"[+-]?[0-9]+")
DATE_FORMATS = ["%Y-%m-%d", "%Y/%m/%d", "%d/%m/%Y", "%d.%m.%Y", "%d-%m-%Y", "%Y%m%d",
                "%d %b %Y", "%d %B %Y", "%b %d, %Y", "%B %d, %Y"]
TIME_FORMATS = ["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]
MIN_DATE, MAX_DATE = dt.date(2000, 1, 1), dt.date(2030, 12, 31)
INVALID_UTF8 = re.compile("[\udc80-\udcff]")  # bytes fastavro could not decode


def fold(s):
    return s.lower().translate(FOLD)


def load_countries(path=COUNTRIES_TSV):
    index = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            code, alpha3, names = line.split("\t")
            for name in [code, alpha3] + names.split("|"):
                index[fold(name)] = code
    for code, names in OTHER_COUNTRY_NAMES.items():
        for name in names:
            index[fold(name)] = code
    return index


def spellings(table):
    out = {}
    for canonical, forms in table.items():
        out[canonical] = canonical
        for form in forms:
            out[form.lower()] = canonical
    return out


class Cleaner:
    """Cleans raw users as the users dataset declares."""

    def __init__(self):
        self.countries = load_countries()
        self.genders = spellings(GENDERS)
        self.statuses = spellings(STATUSES)

    @staticmethod
    def text(raw):
        """The value trimmed, inner whitespace collapsed, or a problem."""
        if raw is None or raw.strip() == "":
            return None, "missing"
        if INVALID_UTF8.search(raw):
            return None, "invalid_utf8"
        if "\x00" in raw:
            return None, "nul_byte"
        return " ".join(raw.split()), None

    @staticmethod
    def integer(s, lo, hi):
        if s.endswith(".0"):
            s = s[:-2]
        if not INTEGER.fullmatch(s):
            return None, "not_a_number"
        n = int(s)
        if not -(1 << 63) <= n < (1 << 63) or n < lo or n > hi:
            return None, "out_of_range"
        return n, None

    @staticmethod
    def lookup(table, key, problem):
        return (table[key], None) if key in table else (None, problem)

    @staticmethod
    def email(s):
        e = s.lower()
        if "@" not in e or not EMAIL.fullmatch(e) or ".." in e:
            return None, "malformed_email"
        return e, None

    @staticmethod
    def date(s):
        if len(s) < 8 or not (s[0].isascii() and s[0].isalnum()) or not any(c.isdigit() for c in s):
            return None, "bad_date"
        for fmt in DATE_FORMATS + TIME_FORMATS:
            try:
                d = dt.datetime.strptime(s, fmt).date()
                break
            except ValueError:
                pass
        else:
            return None, "bad_date"
        if d < MIN_DATE or d > MAX_DATE:
            return None, "out_of_range"
        return d, None

    @staticmethod
    def money(s):
        """An amount with any currency sign or code, thousands separators and a
        decimal point or comma, cut to two decimals."""
        kept, digits, after = [], False, False
        for c in s:
            if c in "0123456789.,-":
                if after:
                    return None, "not_a_number"
                digits = digits or c.isdigit()
                kept.append(c)
            elif c in " \u00a0\u202f'":
                continue
            elif c in "€$£¥" or "A" <= c <= "Z":
                after = digits
            else:
                return None, "not_a_number"
        n = "".join(kept)
        if n == "" or n.count("-") > 1 or "-" in n[1:]:
            return None, "not_a_number"
        dot, comma = n.rfind("."), n.rfind(",")
        if comma > dot:
            n = n[:comma].replace(".", "") + "." + n[comma + 1:]
        elif dot > comma:
            n = n[:dot].replace(",", "") + n[dot:]
        if n.count(".") > 1 or "," in n or not any(c.isdigit() for c in n):
            return None, "not_a_number"
        try:
            cents = int(decimal.Decimal(n) * 100)  # truncated, as the money type stores it
        except decimal.InvalidOperation:
            return None, "not_a_number"
        if cents < 0 or cents > 100000 * 100 or len(str(cents)) > 12:
            return None, "out_of_range"
        return decimal.Decimal(cents).scaleb(-2), None

    def clean(self, raw):
        """Returns (row, None) or (None, reason)."""
        row, flags = {}, []

        def field(name, read):
            value, problem = self.text(raw.get(name))
            if problem is None:
                value, problem = read(value)
            if problem is not None and problem != "missing":
                flags.append(name + ":" + problem)
            return value if problem is None else None

        s, problem = self.text(raw.get("id"))
        if problem is None:
            row["id"], problem = self.integer(s, 1, (1 << 63) - 1)
        if problem is not None:
            return None, "id: " + problem
        row["age"] = field("age", lambda s: self.integer(s, 0, 120))
        row["gender"] = field("gender", lambda s: self.lookup(self.genders, s.lower(), "unknown_value"))
        row["country"] = field("country", lambda s: self.lookup(self.countries, fold(s), "unknown_country"))
        row["city"] = field("city", lambda s: (s, None))
        row["email"] = field("email", self.email)
        row["signup_date"] = field("signup_date", self.date)
        row["last_login"] = field("last_login", self.date)
        row["account_status"] = field("account_status", lambda s: self.lookup(self.statuses, s.lower(), "unknown_value"))
        row["monthly_spend"] = field("monthly_spend", self.money)
        if row["last_login"] and row["signup_date"] and row["last_login"] < row["signup_date"]:
            row["last_login"] = None
            flags.append("last_login:before_signup_date")
        row["quality_flags"] = flags
        return row, None


# --- the churn model ---------------------------------------------------------

NUMERIC = ["age", "tenure_days", "days_since_login", "log_monthly_spend"]
CATEGORICAL = ["gender", "country"]


def features(rows, as_of):
    """The model's input: one row of NUMERIC then CATEGORICAL values each."""
    out = []
    for r in rows:
        spend = r["monthly_spend"]
        out.append([
            np.nan if r["age"] is None else r["age"],
            np.nan if r["signup_date"] is None else (as_of - r["signup_date"]).days,
            np.nan if r["last_login"] is None else (as_of - r["last_login"]).days,
            np.nan if spend is None else math.log1p(float(spend)),
            r["gender"], r["country"],
        ])
    return np.array(out, dtype=object)


def to_float(x):
    return np.asarray(x, dtype=np.float64)


def train(args):
    cleaner = Cleaner()
    rows, labels = [], []
    with open(args.csv, newline="", encoding="utf-8", errors="surrogateescape") as f:
        for raw in csv.DictReader(f):
            row, _ = cleaner.clean({k: (v if v != "" else None) for k, v in raw.items()})
            if row is None or row["account_status"] is None:
                continue
            rows.append(row)
            labels.append(row["account_status"] == "churned")
    dates = [d for r in rows for d in (r["signup_date"], r["last_login"]) if d is not None]
    as_of = max(dates)
    numeric = len(NUMERIC)
    pipeline = Pipeline([
        ("features", ColumnTransformer([
            ("numeric", Pipeline([
                ("float", FunctionTransformer(to_float)),
                ("impute", SimpleImputer(strategy="median", add_indicator=True)),
                ("scale", StandardScaler()),
            ]), list(range(numeric))),
            ("categorical", Pipeline([
                ("impute", SimpleImputer(strategy="constant", fill_value="missing", missing_values=None)),
                ("onehot", OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=0.005)),
            ]), list(range(numeric, numeric + len(CATEGORICAL)))),
        ])),
        ("model", LogisticRegression(C=1.0, max_iter=1000)),
    ])
    start = time.time()
    pipeline.fit(features(rows, as_of), np.array(labels))
    version = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    joblib.dump({"pipeline": pipeline, "as_of": as_of, "version": version}, args.model)
    print(json.dumps({"rows": len(rows), "churned": int(sum(labels)), "as_of": as_of.isoformat(),
                      "version": version, "seconds": round(time.time() - start, 3)}))


# --- the consumer -------------------------------------------------------------


class Registry:
    """Schemas by id from a Confluent-compatible schema registry, cached."""

    def __init__(self, url, username=None, password=None):
        self.url = url.rstrip("/")
        self.auth = None
        if username:
            self.auth = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self.schemas = {}

    def schema(self, schema_id):
        if schema_id not in self.schemas:
            req = urllib.request.Request(f"{self.url}/schemas/ids/{schema_id}")
            if self.auth:
                req.add_header("Authorization", self.auth)
            with urllib.request.urlopen(req, timeout=10) as resp:
                self.schemas[schema_id] = fastavro.parse_schema(json.loads(json.load(resp)["schema"]))
        return self.schemas[schema_id]

    def decode(self, value):
        if len(value) < 5 or value[0] != 0:
            raise ValueError("not in the Confluent wire format")
        (schema_id,) = struct.unpack(">I", value[1:5])
        # Bytes that are not UTF-8 come through as surrogates, for the
        # cleaning to flag, rather than fail the whole batch.
        return fastavro.schemaless_reader(io.BytesIO(value[5:]), self.schema(schema_id),
                                          handle_unicode_errors="surrogateescape")


def tables(schema):
    meta = MetaData(schema=schema)
    users = Table(
        "users", meta,
        Column("id", BigInteger, primary_key=True),
        Column("age", Integer), Column("gender", Text), Column("country", Text), Column("city", Text),
        Column("email", Text), Column("signup_date", Date), Column("last_login", Date),
        Column("account_status", Text), Column("monthly_spend", Numeric(12, 2)),
        Column("quality_flags", ARRAY(Text), nullable=False),
        Column("event_id", Text, nullable=False), Column("source", Text),
        Column("event_time", DateTime(timezone=True), nullable=False),
    )
    rejects = Table(
        "users_rejects", meta,
        Column("id", BigInteger, primary_key=True, autoincrement=True),
        Column("event_id", Text), Column("source", Text), Column("reason", Text, nullable=False),
        Column("topic", Text, nullable=False), Column("partition", Integer, nullable=False),
        Column("offset", BigInteger, nullable=False),
        Column("rejected_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )
    predictions = Table(
        "predictions", meta,
        Column("user_id", BigInteger, primary_key=True),
        Column("model_version", Text, nullable=False),
        Column("churn_probability", Float, nullable=False),
        Column("churn_predicted", Boolean, nullable=False),
        Column("predicted_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )
    return meta, users, rejects, predictions


def upsert(table, key, newer=None):
    stmt = pg_insert(table)
    update = {c.name: stmt.excluded[c.name] for c in table.columns if c.name != key and not c.server_default}
    where = None if newer is None else table.c[newer] <= stmt.excluded[newer]
    return stmt.on_conflict_do_update(index_elements=[key], set_=update, where=where)


def sqlalchemy_url(url):
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgresql+psycopg2://" + url[len(scheme):]
    return url


def kafka_settings(env):
    settings = {"bootstrap_servers": env["KAFKA_BROKERS"].split(",")}
    tls = env.get("KAFKA_TLS", "").lower() == "true"
    mechanism = env.get("KAFKA_SASL_MECHANISM", "")
    if mechanism:
        password = env.get("KAFKA_SASL_PASSWORD", "")
        if not password and env.get("KAFKA_SASL_PASSWORD_FILE"):
            with open(env["KAFKA_SASL_PASSWORD_FILE"]) as f:
                password = f.readline().strip()
        settings.update(sasl_mechanism=mechanism, sasl_plain_username=env["KAFKA_SASL_USERNAME"],
                        sasl_plain_password=password)
    settings["security_protocol"] = ("SASL_" if mechanism else "") + ("SSL" if tls else "PLAINTEXT")
    if tls and env.get("KAFKA_TLS_CA_FILE"):
        settings["ssl_cafile"] = env["KAFKA_TLS_CA_FILE"]
    return settings


def accept_unlisted_sasl_mechanism(mechanism):
    """The bench's in-process broker (franz-go's kfake) accepts a SASL
    handshake without listing its mechanisms, which kafka-python takes for a
    refusal: an accepted handshake that lists none accepts the one asked.
    The SCRAM exchange that follows still authenticates (a wrong password
    fails). A real Kafka broker always lists them, so this changes nothing
    there."""
    decode = sasl.SaslHandshakeResponse.decode.__func__

    def accepting(cls, *args, **kwargs):
        response = decode(cls, *args, **kwargs)
        if response.error_code == 0 and not response.mechanisms:
            response.mechanisms = [mechanism]
        return response

    sasl.SaslHandshakeResponse.decode = classmethod(accepting)


def consume(args):
    env = os.environ
    bundle = joblib.load(args.model)
    pipeline, as_of, version = bundle["pipeline"], bundle["as_of"], bundle["version"]
    cleaner = Cleaner()
    registry = Registry(env["SCHEMA_REGISTRY_URL"], env.get("SCHEMA_REGISTRY_USERNAME"), env.get("SCHEMA_REGISTRY_PASSWORD"))
    engine = create_engine(sqlalchemy_url(env["DATABASE_URL"]))
    schema = env.get("PEER_SCHEMA", "peer")
    meta, users, rejects, predictions = tables(schema)
    with engine.begin() as conn:
        conn.execute(text(f'create schema if not exists "{schema}"'))
        meta.create_all(conn)
    upsert_users = upsert(users, "id", newer="event_time")
    upsert_predictions = upsert(predictions, "user_id")

    if env.get("KAFKA_SASL_MECHANISM"):
        accept_unlisted_sasl_mechanism(env["KAFKA_SASL_MECHANISM"])
    consumer = KafkaConsumer(
        args.topic, group_id=args.group, enable_auto_commit=False, auto_offset_reset="earliest",
        max_poll_records=args.batch, **kafka_settings(env))
    consumed = upserted = rejected = predicted = 0
    start, first = time.time(), None
    try:
        while consumed < args.events:
            polled = consumer.poll(timeout_ms=1000)
            if not polled:
                continue
            first = first or time.time()
            latest, dead = {}, []
            for tp, records in polled.items():
                for rec in records:
                    consumed += 1
                    raw = registry.decode(rec.value)
                    row, reason = cleaner.clean(raw)
                    if row is None:
                        dead.append({"event_id": raw.get("event_id"), "source": raw.get("source"), "reason": reason,
                                     "topic": tp.topic, "partition": tp.partition, "offset": rec.offset})
                        continue
                    row.update(event_id=raw["event_id"], source=raw.get("source"), event_time=raw["ingested_at"])
                    # One row per user in a statement: ON CONFLICT cannot
                    # update a row twice. The newest event wins.
                    seen = latest.get(row["id"])
                    if seen is None or seen["event_time"] <= row["event_time"]:
                        latest[row["id"]] = row
            rows = list(latest.values())
            with engine.begin() as conn:
                if rows:
                    conn.execute(upsert_users, rows)
                    probability = pipeline.predict_proba(features(rows, as_of))[:, 1]
                    conn.execute(upsert_predictions, [
                        {"user_id": r["id"], "model_version": version, "churn_probability": float(p),
                         "churn_predicted": bool(p >= 0.5)} for r, p in zip(rows, probability)])
                if dead:
                    conn.execute(rejects.insert(), dead)
            consumer.commit()  # after the database commit: at-least-once
            upserted += len(rows)
            predicted += len(rows)
            rejected += len(dead)
    finally:
        consumer.close()
    end = time.time()
    print(json.dumps({"consumed": consumed, "upserted": upserted, "rejected": rejected, "predicted": predicted,
                      "seconds": round(end - start, 3), "seconds_from_first_record": round(end - (first or end), 3),
                      "model_version": version}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="fit the churn model on a CSV of users and save it with joblib")
    t.add_argument("--csv", required=True)
    t.add_argument("--model", required=True)
    c = sub.add_parser("consume", help="consume raw.users into PostgreSQL until --events records")
    c.add_argument("--events", type=int, required=True)
    c.add_argument("--model", required=True)
    c.add_argument("--topic", default="raw.users")
    c.add_argument("--group", default="seed-consumer")
    c.add_argument("--batch", type=int, default=500, help="records per poll, one database transaction each")
    args = parser.parse_args()
    {"train": train, "consume": consume}[args.command](args)


if __name__ == "__main__":
    main()

-- Goal: the tables of one payment server's ledger in PostgreSQL (postgresLedgerStore.ts), one schema per server
-- ledger; the same records as the SQLite file of sqliteLedgerStore.ts, keyed the same way.
-- Method: run inside a transaction with search_path set to the ledger's schema (so the names below are that
-- schema's), after which the store writes meta.schemaVersion. `seq` keeps the order rows were first written in,
-- which the iterations return, as SQLite's rowid does; an upsert never changes it. Amounts are bigint (integer
-- minor units); aggregate txIds and stored answers are json, whose text PostgreSQL keeps exactly as written.

CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE accounts (
  seq bigserial NOT NULL, id text PRIMARY KEY, kind text NOT NULL, balance_minor bigint NOT NULL,
  credit_limit_minor bigint NOT NULL, held_minor bigint NOT NULL, version bigint NOT NULL);
CREATE TABLE transfers (
  id text PRIMARY KEY, debit_account text NOT NULL, credit_account text NOT NULL, amount_minor bigint NOT NULL,
  fingerprint text NOT NULL, note text NOT NULL);
CREATE TABLE holds (
  tx_id text PRIMARY KEY, means_id text NOT NULL, payee text NOT NULL, amount_minor bigint NOT NULL,
  proxy_id text NOT NULL, state text NOT NULL);
-- [INV-4 nothing twice] one posting per txId: the primary key.
CREATE TABLE postings (
  seq bigserial NOT NULL, tx_id text PRIMARY KEY, means_id text NOT NULL, payee text NOT NULL, amount_minor bigint,
  via text NOT NULL, request_id text NOT NULL, aggregate_id text, proxy_id text, reversed_by text);
CREATE TABLE aggregates (
  seq bigserial NOT NULL, id text PRIMARY KEY, means_id text NOT NULL, payee text NOT NULL, sum_minor bigint NOT NULL,
  tx_ids json NOT NULL, posted_minor bigint NOT NULL);
CREATE TABLE voids (
  seq bigserial NOT NULL, proxy_id text NOT NULL, tx_id text NOT NULL, request_id text NOT NULL,
  PRIMARY KEY (proxy_id, tx_id));
CREATE TABLE counter_uses (
  proxy_id text NOT NULL, counter bigint NOT NULL, tx_id text NOT NULL, PRIMARY KEY (proxy_id, counter));
-- The stored answers that make requests idempotent: a resent (sender, req_id) gets this answer again.
CREATE TABLE results (
  sender text NOT NULL, req_id text NOT NULL, fingerprint text NOT NULL, result json NOT NULL,
  PRIMARY KEY (sender, req_id));

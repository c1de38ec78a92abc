/// <reference types="k6" />
// Goal: what the k6 scripts share: where the payment servers' HTTP interface is, how a money request is made
// (JSON body, Idempotency-Key, the issuer), and the JSON file `handleSummary` writes.
// Method: plain functions over k6's modules; k6 (≥ 0.57) runs these TypeScript files as they are. Settings come
// from environment variables (`k6 run -e BASE_URL=… -e MEANS=…`), each with a default that matches
// `payfleet http load/k6/shared-means.yaml`.

import http, { type RefinedResponse, type ResponseType } from 'k6/http';

export const BASE_URL = __ENV.BASE_URL ?? 'http://127.0.0.1:8080';
/** Means m0 … m(MEANS−1) exist on the server (one per terminal of the scenario). */
export const MEANS = Number(__ENV.MEANS ?? '100');
/** Where handleSummary writes its JSON. */
export const SUMMARY_DIR = __ENV.SUMMARY_DIR ?? '.';

export interface Receipt {
  v: 'receipt.v1';
  kind: 'authorization' | 'debit' | 'capture';
  txId: string;
  meansId: string;
  payee: string;
  amountMinor: number;
  issuer: string;
  serverSig: string;
}

export interface MoneyAnswer {
  ok?: boolean;
  txId?: string;
  availableMinor?: number;
  receipt?: Receipt;
  error?: { code: string; message: string; field?: string };
}

/** A POST of a money request; `key` is its Idempotency-Key (the same key and body give the same answer). */
export function postMoney(path: string, key: string, body: Record<string, unknown>, tags: Record<string, string> = {}): RefinedResponse<ResponseType> {
  return http.post(`${BASE_URL}${path}`, JSON.stringify(body), {
    headers: { 'Content-Type': 'application/json', 'Idempotency-Key': key },
    tags,
  });
}

export function answerOf(response: RefinedResponse<ResponseType>): MoneyAnswer {
  try {
    return response.json() as MoneyAnswer;
  } catch {
    return {};
  }
}

/** A uniform integer in [min, max]: amounts are integer minor units, never floats. */
export function randomInt(min: number, max: number): number {
  return min + Math.floor(Math.random() * (max - min + 1));
}

export function randomMeans(): string {
  return `m${randomInt(0, MEANS - 1)}`;
}

/** The summary k6 hands to handleSummary, written as JSON, with a one-line verdict on stdout. */
export function writeSummary(name: string, data: { metrics: Record<string, { thresholds?: Record<string, { ok: boolean }> }> }): Record<string, string> {
  const failed = Object.entries(data.metrics).flatMap(([metric, m]) =>
    Object.entries(m.thresholds ?? {})
      .filter(([, t]) => !t.ok)
      .map(([threshold]) => `${metric}: ${threshold}`),
  );
  const path = `${SUMMARY_DIR}/${name}-summary.json`;
  const verdict = failed.length === 0 ? 'every threshold passed' : `FAILED thresholds: ${failed.join('; ')}`;
  return { [path]: JSON.stringify(data, null, 2), stdout: `\n${name}: ${verdict}; summary written to ${path}\n` };
}

// Goal: the report's account of the money SD paid out of its own pocket — the loss account by cause and by
// means — and of the payments made offline on means shared by several terminals (family wallets).
// Method: reads `lossAccount` and `sharedMeans` of summary.json through the defensive accessors of read.ts (a
// summary written before they existed says "not recorded"), and escapes everything it puts on the page. Money is
// in major units, as in the key figures.

import { escapeHtml, formatCount, formatMinor } from './format.ts';
import { arrayAt, isRecord, numberAt, recordAt, stringAt, type Summary } from './read.ts';
import { NOT_RECORDED } from './sections.ts';

/** At most this many means are listed; the rest are counted. */
const MEANS_LISTED = 20;

const CAUSE_TEXT: Record<string, string> = {
  sharedOffline: 'shared means spent offline by several terminals',
  spentElsewhere: 'spent through another point of issue',
  subscriptionUnfunded: 'a purse period its funding means could not pay',
  dedicatedMeans: 'a dedicated means: SD approved other spending before its local payments reached it',
  unexplained: 'not explained by any posting (a bug to look at)',
};

function money(value: number | undefined): string {
  return value === undefined ? NOT_RECORDED : escapeHtml(formatMinor(value));
}

export function lossAccountSection(summary: Summary): string {
  const shared = recordAt(summary, 'sharedMeans');
  const sharedRows = shared
    ? [
        ['shared means', escapeHtml(formatCount(numberAt(shared, 'means') ?? 0))],
        ['terminals holding one', escapeHtml(formatCount(numberAt(shared, 'terminals') ?? 0))],
        ['local payments on them', escapeHtml(formatCount(numberAt(shared, 'localPayments') ?? 0))],
        ['of which offline', escapeHtml(formatCount(numberAt(shared, 'offlinePayments') ?? 0))],
        ['offline amount', money(numberAt(shared, 'offlineAmountMinor'))],
      ]
        .map(([label, value]) => `<tr><th>${label}</th><td class="num">${value}</td></tr>`)
        .join('\n')
    : `<tr><td>${NOT_RECORDED}</td></tr>`;

  const loss = recordAt(summary, 'lossAccount');
  let lossBody = `<p>${NOT_RECORDED}</p>`;
  if (loss) {
    const byCause = recordAt(loss, 'byCause') ?? {};
    const causeRows = Object.entries(byCause)
      .filter(([, value]) => typeof value === 'number' && value !== 0)
      .map(([cause, value]) => `<tr><th>${escapeHtml(CAUSE_TEXT[cause] ?? cause)} <code>${escapeHtml(cause)}</code></th><td class="num">${money(value as number)}</td></tr>`)
      .join('\n');
    const means = (arrayAt(loss, 'byMeans') ?? []).filter(isRecord);
    const meansRows = means
      .slice(0, MEANS_LISTED)
      .map((m) => `<tr><td><code>${escapeHtml(stringAt(m, 'meansId') ?? '')}</code></td><td><code>${escapeHtml(stringAt(m, 'cause') ?? '')}</code></td><td class="num">${money(numberAt(m, 'amountMinor'))}</td></tr>`)
      .join('\n');
    const more = means.length > MEANS_LISTED ? `<p class="small">and ${escapeHtml(formatCount(means.length - MEANS_LISTED))} more means.</p>` : '';
    lossBody = `<p>The loss account paid ${money(numberAt(loss, 'totalMinor'))} to beneficiaries for payments their means could not cover.</p>
<table class="figures"><caption>By cause</caption><tbody>
${causeRows || '<tr><td>nothing lost</td></tr>'}
</tbody></table>
${means.length > 0 ? `<table class="loss-means"><thead><tr><th>means</th><th>cause</th><th class="num">loss</th></tr></thead><tbody>\n${meansRows}\n</tbody></table>${more}` : ''}`;
  }
  return `<section class="loss-account"><h2>Offline risk: shared means and the loss account</h2>
<table class="figures"><caption>Shared means (family wallets)</caption><tbody>
${sharedRows}
</tbody></table>
${lossBody}
</section>`;
}

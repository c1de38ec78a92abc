import { describe, expect, it } from 'vitest';
import { lossAccountSection } from './lossSection.ts';

describe('the loss account section', () => {
  it('shows the shared means, the loss by cause and the means that lost, escaped', () => {
    const html = lossAccountSection({
      sharedMeans: { means: 30, terminals: 95, localPayments: 382, offlinePayments: 60, offlineAmountMinor: 51920 },
      lossAccount: {
        totalMinor: 4350,
        byCause: { sharedOffline: 4224, spentElsewhere: 126, subscriptionUnfunded: 0, dedicatedMeans: 0, unexplained: 0 },
        byMeans: [
          { meansId: 'f0.9', cause: 'sharedOffline', amountMinor: 4224 },
          { meansId: '<m1>', cause: 'spentElsewhere', amountMinor: 126 },
        ],
      },
    });
    expect(html).toContain('of which offline</th><td class="num">60');
    expect(html).toContain('519.20');
    expect(html).toContain('<code>sharedOffline</code></th><td class="num">42.24');
    expect(html).not.toContain('subscriptionUnfunded');
    expect(html).toContain('&lt;m1&gt;');
    expect(html).not.toContain('<m1>');
  });

  it('says "not recorded" for a summary written before these figures existed', () => {
    const html = lossAccountSection({ version: 1 });
    expect(html.match(/not recorded/g)?.length).toBe(2);
  });
});

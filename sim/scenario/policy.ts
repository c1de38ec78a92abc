// Goal: hand a scenario's policy to the proxy.
// Method: the scenario keeps the threshold beside the offline caps (as a person writes it); the domain groups
// them as the discrimination policy. This is the only place that regroups them.

import type { ProxyPolicy } from '../../machines/domain/proxyRules.ts';
import type { ScenarioPolicy } from './types.ts';

export function proxyPolicyOf(policy: ScenarioPolicy): ProxyPolicy {
  return {
    discrimination: { thresholdMinor: policy.thresholdMinor, offline: policy.offline },
    confirmation: policy.confirmation,
    remittance: policy.remittance,
    remoteTimeoutMs: policy.remoteTimeoutMs,
  };
}

// A Warden client in TypeScript: propose a tool call, run the tool only when Warden
// allows it, report what happened. Node 18+ (global fetch); no dependencies.
//
//   WARDEN_URL=http://127.0.0.1:8787 WARDEN_KEY=wdn_ag_... node dist/client.js

export interface Decision {
  action_id: string;
  run_id: string;
  state: string; // executing | awaiting_approval | decided | succeeded | ...
  outcome: string; // allow | deny | needs_approval | suggest_only
  code: string | null;
  reasons: string[];
  approval_id: string | null;
  idempotency_key: string | null;
  replayed: boolean;
}

export interface WardenError {
  code: string; // stable: docs/errors/<code>.md
  message: string;
  hint: string;
}

export class WardenRefused extends Error {
  constructor(
    readonly status: number,
    readonly error: WardenError,
    readonly retryAfterS: number | null,
  ) {
    super(`${error.code}: ${error.message}`);
  }
}

export class Warden {
  constructor(
    private readonly url: string,
    private readonly key: string,
  ) {}

  private async post<T>(path: string, body: unknown): Promise<T> {
    const response = await fetch(this.url + path, {
      method: "POST",
      headers: {
        authorization: `Bearer ${this.key}`,
        "content-type": "application/json",
      },
      body: JSON.stringify(body),
    });
    const payload = await response.json();
    if (!response.ok) {
      const retry = response.headers.get("retry-after");
      throw new WardenRefused(response.status, payload.error, retry ? Number(retry) : null);
    }
    return payload as T;
  }

  /** Ask Warden about one tool call; the decision is recorded before it answers. */
  decide(call: {
    agent: string;
    tool: string;
    args: Record<string, unknown>;
    run_id: string;
    step?: number;
    context?: Record<string, unknown>;
  }): Promise<Decision> {
    return this.post<Decision>("/v1/decide", call);
  }

  /** Report what running an allowed action's tool gave (settles the budget). */
  report(actionId: string, outcome: { ok: boolean; result?: unknown; error?: { message: string } }) {
    return this.post<Decision>(`/v1/actions/${encodeURIComponent(actionId)}/outcome`, outcome);
  }

  /** Decide, run `tool` only if allowed (and not a replay), report its outcome. */
  async governed<T>(
    call: Parameters<Warden["decide"]>[0],
    tool: (args: Record<string, unknown>) => Promise<T>,
  ): Promise<{ decision: Decision; result?: T }> {
    const decision = await this.decide(call);
    if (decision.state !== "executing" || decision.replayed) {
      return { decision }; // denied, waiting for a person, or already done
    }
    try {
      const result = await tool(call.args);
      await this.report(decision.action_id, { ok: true, result });
      return { decision, result };
    } catch (err) {
      await this.report(decision.action_id, { ok: false, error: { message: String(err) } });
      throw err;
    }
  }
}

async function main(): Promise<void> {
  const warden = new Warden(
    process.env.WARDEN_URL ?? "http://127.0.0.1:8787",
    process.env.WARDEN_KEY ?? "",
  );
  const refund = async (args: Record<string, unknown>) => ({ refund_id: `re_${args.order_id}` });
  const call = (amount: number, step: number) => ({
    agent: "refund_autopilot",
    tool: "create_refund",
    args: { order_id: "ord_123456", amount_usd: amount, reason: "damaged" },
    run_id: process.env.WARDEN_RUN ?? "run_ts_1",
    step,
    context: { customer_tier: "pro" },
  });
  for (const [step, amount] of [30, 120].entries()) {
    const { decision, result } = await warden.governed(call(amount, step), refund);
    console.log(`${amount} USD: ${decision.outcome} (${decision.state})`, result ?? decision.reasons[0]);
  }
}

// `process` without @types/node: declared here so the example needs no dependency at all
declare const process: { env: Record<string, string | undefined>; exitCode?: number };

main().catch((err: unknown) => {
  console.error(err instanceof WardenRefused ? `${err.status} ${err.message}` : err);
  process.exitCode = 1;
});

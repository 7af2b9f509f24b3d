"""Warden's one error tree, and the registry of stable codes.

Decisions are values, not exceptions: a deny is the system working and comes back as a
`Decision` whose `code` is one of the ``W-...`` codes below. Exceptions are for misuse and
faults, and every one of them carries a code too::

    WardenError                      code, message, hint
    ├── ConfigError                  + file, line, field: a file a user wrote is wrong
    │   ├── ProjectError             W-PRJ-*  warden.yaml
    │   ├── ManifestError            W-MAN-*  an agent manifest
    │   ├── PolicyError              W-POL-0* a policy file, or its condition
    │   ├── PolicyTestError          W-PTS-*  a *_test.yaml file
    │   └── McpConfigError           W-MCP-001 mcp.yaml, the MCP proxy's file
    ├── ToolDefinitionError          W-TOOL-* a @warden.tool that cannot be registered
    ├── GateError                    W-GATE-* the gate used wrongly (e.g. no policy loaded)
    ├── StoreError                   W-STO-*  state could not be read or written
    ├── IdempotencyError             W-IDM-*  an idempotency key reused wrongly, or busy
    ├── ApprovalError                W-APR-*  an approval that does not let the action run
    ├── ExecutionError               W-EXE-*  an action that cannot execute
    ├── AuditError                   W-AUD-*  the audit log or a checkpoint does not verify
    ├── RunError                     W-RUN-*  an unknown run, or one that cannot resume
    ├── ModelError                   W-MDL-*  a model call failed after retries
    ├── AuthError                    W-AUTH-* a caller without valid credentials or rights
    ├── ApiError                     W-API-*  an HTTP request the server refuses to read
    ├── EvalError                    W-EVL-*  an eval suite or baseline that cannot be used
    ├── IntegrationError             W-INT-*  a framework adapter that cannot go on
    ├── ReplayError                  W-RPL-*  recorded decisions that cannot be re-decided
    └── McpError                     W-MCP-*  the MCP proxy: an upstream, or a caller

Every code has a docs page (``docs/errors/<CODE>.md``) generated from `CODES`, which says
what happened, why, and how to fix it. A test keeps the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CODES",
    "ApiError",
    "ApprovalError",
    "AuditError",
    "AuthError",
    "CodeInfo",
    "ConfigError",
    "EvalError",
    "ExecutionError",
    "GateError",
    "IdempotencyError",
    "IntegrationError",
    "ManifestError",
    "McpConfigError",
    "McpError",
    "ModelError",
    "PolicyError",
    "PolicyTestError",
    "ProjectError",
    "ReplayError",
    "RunError",
    "StoreError",
    "ToolDefinitionError",
    "WardenError",
]


@dataclass(frozen=True, kw_only=True, slots=True)
class CodeInfo:
    """What one stable code means; rendered into its docs page."""

    title: str
    """A short name for the situation."""
    why: str
    """What makes Warden say it."""
    fix: str
    """What a user does about it."""
    kind: str
    """``error`` (an exception), ``decision`` (a code on a deny), ``outcome`` (on an
    executed action) or ``stop`` (why the runner stopped a run)."""


def _e(title: str, why: str, fix: str) -> CodeInfo:
    return CodeInfo(title=title, why=why, fix=fix, kind="error")


def _d(title: str, why: str, fix: str) -> CodeInfo:
    return CodeInfo(title=title, why=why, fix=fix, kind="decision")


def _o(title: str, why: str, fix: str) -> CodeInfo:
    return CodeInfo(title=title, why=why, fix=fix, kind="outcome")


def _s(title: str, why: str, fix: str) -> CodeInfo:
    return CodeInfo(title=title, why=why, fix=fix, kind="stop")


CODES: dict[str, CodeInfo] = {
    # --- configuration files -------------------------------------------------------------
    "W-CFG-001": _e(
        "File cannot be read",
        "A file named by the project, or given on the command line, does not exist or "
        "cannot be opened.",
        "Check the path; paths in warden.yaml are relative to the folder holding it.",
    ),
    "W-CFG-002": _e(
        "Not valid YAML",
        "The YAML parser stopped at the line shown: usually a tab, an unclosed quote or a "
        "wrong indentation.",
        "Fix the syntax at the line shown. Indent with spaces; quote strings holding ':'.",
    ),
    "W-CFG-003": _e(
        "Duplicate key",
        "The same key appears twice in one mapping. YAML parsers silently keep the last "
        "one; Warden refuses, because the first one is what a reader sees.",
        "Remove or rename one of the two keys.",
    ),
    "W-CFG-004": _e(
        "Wrong value",
        "A field has a value of the wrong type or outside its allowed range, or a "
        "required field is missing, or a field is unknown.",
        "Change the field named in the message; the message lists what is accepted.",
    ),
    "W-PRJ-001": _e(
        "No project file",
        "No warden.yaml was found in the folder given or any folder above it.",
        "Run the command inside a Warden project, pass --project PATH, or create "
        "warden.yaml (see docs/concepts/project.md).",
    ),
    "W-PRJ-002": _e(
        "Tool module cannot be imported",
        "A module listed under `tools:` in warden.yaml raised an error on import.",
        "Run `python -c 'import MODULE'` in the project folder to see the error.",
    ),
    "W-PRJ-003": _e(
        "Unknown tool",
        "A manifest or policy names a tool that no module listed under `tools:` registers.",
        "Register the tool with @warden.tool in a listed module, or fix the name.",
    ),
    "W-PRJ-004": _e(
        "Duplicate fact provider",
        "Two modules listed in warden.yaml declare fact providers with the same name.",
        'Rename one of them: @warden.fact("other_name").',
    ),
    "W-PRJ-005": _e(
        "Runner not configured",
        "The command runs or resumes agents, and warden.yaml's `runner:` section is missing "
        "or names a model Warden cannot build (a missing name, script "
        "or API-key variable).",
        "Add `runner: {models: [{provider: openai, name: gpt-4o-mini, api_key_env: "
        "OPENAI_API_KEY}]}` or a scripted model; see docs/how-to/run-agents.md.",
    ),
    "W-MAN-001": _e(
        "Mode and autonomy disagree",
        "A manifest sets both `mode` and `autonomy`, and the level maps to another mode.",
        "Set only one of them, or make them agree (L0 draft_only, L1 suggest_only, "
        "L2 suggest_then_act, L3/L4 act).",
    ),
    "W-MAN-002": _e(
        "Bad tool shorthand",
        "A per-tool shorthand under `permissions.<tool>` is unknown, has the wrong type, or "
        "names an argument the tool does not have.",
        "Use max_<argument>, require_human_approval_over_<unit>, or deny_if_<fact>: true; "
        "see docs/concepts/manifests.md.",
    ),
    "W-MAN-003": _e(
        "Duplicate agent",
        "Two manifests declare agents with the same name.",
        "Give every agent a unique `name`.",
    ),
    # --- policies ------------------------------------------------------------------------
    "W-POL-001": _e(
        "Condition is not a valid expression",
        "The `if:` condition does not parse as an expression.",
        "Write a single expression, e.g. \"amount_usd <= 50 and customer_tier == 'pro'\".",
    ),
    "W-POL-002": _e(
        "Condition uses something outside the safe subset",
        "Policy conditions may compare, combine and look up values, and call a fixed list "
        "of functions. Imports, lambdas, comprehensions, attribute names starting with an "
        "underscore, assignments and calls to other functions are rejected at load.",
        "Rewrite the condition with the allowed operators and functions listed in "
        "docs/concepts/policies.md; move computation into a fact provider.",
    ),
    "W-POL-003": _e(
        "Condition too large",
        "The condition is longer, or nests deeper, than the limits allow "
        "(2,000 characters, 400 syntax nodes, depth 24).",
        "Split the rule into several rules, or compute the value in a fact provider.",
    ),
    "W-POL-004": _e(
        "Rule has no outcome, or more than one",
        "A rule must say exactly one of `allow: true`, `deny: REASON`, "
        "`require_approval: ROLE` or `redact: [FIELDS]`.",
        "Give the rule exactly one outcome.",
    ),
    "W-POL-005": _e(
        "No policy loaded",
        "Warden fails closed: with no policy it cannot tell what is allowed, so it "
        "refuses to start rather than allow everything.",
        "List at least one policy folder under `policies:` in warden.yaml and put a "
        "policy file there.",
    ),
    "W-POL-006": _e(
        "Duplicate rule id",
        "Two rules in the loaded policy set have the same `id`.",
        "Rule ids must be unique across all loaded policy files.",
    ),
    "W-POL-007": _e(
        "Unknown function",
        "The condition calls a function Warden does not provide.",
        "Use one of the functions listed in docs/concepts/policies.md.",
    ),
    # --- decisions (codes on a deny / stop) ----------------------------------------------
    "W-KIL-001": _d(
        "Kill switch engaged",
        "An operator stopped all agents, this agent, or this tool.",
        "Find out why it was flipped; an operator lifts it when it is safe.",
    ),
    "W-IDN-001": _d(
        "Unknown agent",
        "The call names an agent that no loaded manifest declares.",
        "Declare the agent in a manifest listed in warden.yaml, or fix the name.",
    ),
    "W-IDN-002": _d(
        "Caller is not this agent",
        "The authenticated caller differs from the agent the call claims to be.",
        "Use the credentials of the agent that makes the call.",
    ),
    "W-IDN-003": _d(
        "Tool not allowed",
        "The tool is not in the agent's `permissions.allowed_tools`, or is not registered.",
        "Add the tool to the allowlist if the agent should have it.",
    ),
    "W-CON-001": _d(
        "Arguments break the tool's contract",
        "The arguments do not validate against the tool's argument model: a wrong type "
        "(no coercion), a missing or unknown field, or a value out of range. The failing "
        "field's path is in the reasons. This counts as an action error for the breaker.",
        "Have the agent send arguments that match the tool's JSON Schema.",
    ),
    "W-CON-002": _d(
        "Arguments too large",
        "The arguments exceed the size limits (string length, list length, depth).",
        "Send smaller arguments, or raise the tool's limits if they are too tight.",
    ),
    "W-LOOP-001": _d(
        "Loop detected",
        "The agent proposed the same tool with the same arguments more often in one run "
        "than `loop_detection.max_identical_calls` allows. The run stops.",
        "Read the escalation: the agent is stuck; fix the prompt, tool output or task.",
    ),
    "W-BUD-001": _d(
        "Tool-call budget spent",
        "The run would exceed `budgets.max_tool_calls`.",
        "The run stops and escalates; raise the budget if the task needs more calls.",
    ),
    "W-BUD-002": _d(
        "Spend budget exceeded",
        "The run would exceed `budgets.max_usd_per_task`.",
        "The run stops and escalates; raise the budget or route to a cheaper model.",
    ),
    "W-BUD-003": _d(
        "Token budget exceeded",
        "The run would exceed `budgets.max_tokens`.",
        "The run stops and escalates; trim the context or raise the budget.",
    ),
    "W-BUD-004": _d(
        "Wall-time budget exceeded",
        "The run has been going longer than `budgets.max_wall_seconds`.",
        "The run stops and escalates.",
    ),
    "W-POL-101": _d(
        "Denied by a rule",
        "A policy rule with a `deny` outcome matched the call.",
        "The reason and the rule's file:line are in the decision.",
    ),
    "W-POL-102": _d(
        "No rule matched",
        "Warden fails closed: no rule in any policy that covers this tool matched.",
        "Add a rule that allows the case if it should be allowed; "
        "`warden policy explain` shows every rule considered.",
    ),
    "W-POL-103": _d(
        "Condition could not be evaluated",
        "A condition refers to a name the call does not supply (not an argument, a "
        "context value or a fact), or compares values of incompatible types.",
        "Supply the value in the call's context or register a fact provider for it; "
        "`warden policy explain` shows the failing rule.",
    ),
    "W-POL-104": _d(
        "Fact provider failed",
        "A fact provider raised an error or did not answer within its timeout; the "
        "decision fails closed.",
        "Check the provider's backend; see its error in the reasons.",
    ),
    "W-BRK-001": _d(
        "Circuit breaker open",
        "The agent's action error rate went over `circuit_breakers.action_error_rate_max` "
        "within the window; writes are demoted to suggestions until a probe succeeds.",
        "Find the failing tool; the breaker half-opens after its cooldown by itself.",
    ),
    "W-MODE-001": _d(
        "Mode turns the write into a proposal",
        "The agent's mode (draft_only or suggest_only, or a breaker demotion) records "
        "writes as proposals instead of executing them.",
        "A person carries the proposal out, or the agent's autonomy is raised.",
    ),
    "W-MODE-002": _d(
        "Mode asks for approval",
        "The agent runs in suggest_then_act: every allowed write waits for a person.",
        "Approve or deny the request.",
    ),
    # --- misuse and faults ---------------------------------------------------------------
    "W-TOOL-001": _e(
        "Tool function has no argument model",
        "@warden.tool needs the function's first parameter annotated with a pydantic model class.",
        "Declare `def my_tool(args: MyArgs) -> ...` with `class MyArgs(BaseModel)`.",
    ),
    "W-TOOL-002": _e(
        "Duplicate tool name",
        "Two tools register under the same name.",
        "Rename one of them with @warden.tool(name=...).",
    ),
    "W-TOOL-003": _e(
        "Bad tool declaration",
        "A tool's risk tier is unknown, a sensitive argument is not a field of its model, "
        "or a limit is not positive.",
        "Fix the @warden.tool arguments as the message says.",
    ),
    "W-GATE-001": _e(
        "Gate misused",
        "A gate method was called with values it cannot use (e.g. settling a reservation twice).",
        "Follow the message.",
    ),
    "W-PTS-001": _e(
        "Policy test file is wrong",
        "A *_test.yaml file has a case without `expect`, an unknown outcome, or names a "
        "policy file that does not exist.",
        "Fix the case as the message says; see docs/how-to/test-policies.md.",
    ),
    "W-PTS-002": _e(
        "No policy test ran",
        "`warden policy test` found no *_test.yaml case. A green run that tested nothing "
        "would hide a missing test.",
        "Write a refunds_test.yaml beside refunds.yaml.",
    ),
    "W-STO-001": _e(
        "State store unavailable",
        "Warden could not read or write its state; decisions fail closed.",
        "Check the store's health; nothing executes until it answers.",
    ),
    "W-STO-002": _e(
        "Database written by a newer Warden",
        "The database records a schema version this Warden does not know, so reading it "
        "could misread records.",
        "Upgrade Warden to the version that wrote the database, or point it at another file.",
    ),
    "W-STO-003": _e(
        "Not a Warden database",
        "The file exists but is not a SQLite database Warden created, or it is damaged.",
        "Check the path (the default is .warden/warden.db in the project); restore the "
        "file from a backup if it was damaged.",
    ),
    "W-STO-004": _e(
        "Database refuses writes",
        "The database is up but read-only (a standby, a full disk, a read-only "
        "transaction default), so no decision can be recorded; decisions fail closed.",
        "Point Warden at the primary, or make the database writable again; Warden "
        "recovers by itself once writes succeed.",
    ),
    "W-AUTH-001": _e(
        "No credentials",
        "The request carries no `Authorization: Bearer ...` header, or the value is not a "
        "Warden key (`wdn_...`).",
        "Send the key `warden keys create` printed, as `Authorization: Bearer wdn_...`.",
    ),
    "W-AUTH-002": _e(
        "Unknown key",
        "The key's id is not known to this Warden, or its secret does not match.",
        "Check that the key was copied whole and that the server uses the database the "
        "key was created in (`warden keys list`).",
    ),
    "W-AUTH-003": _e(
        "Key expired",
        "The key was created with an expiry that has passed.",
        "Create a new key (`warden keys create`) or rotate this one (`warden keys rotate KEY_ID`).",
    ),
    "W-AUTH-004": _e(
        "Key revoked",
        "An operator revoked the key (`warden keys revoke`), or it was rotated and its "
        "grace period is over.",
        "Use the key that replaced it, or ask an operator for a new one.",
    ),
    "W-AUTH-005": _e(
        "Not allowed for this key",
        "The key is valid but its role or scope does not cover this request: an agent key "
        "calling the admin API, acting for another agent or using a tool outside its "
        "scope; an operator without the role the endpoint needs.",
        "Use a key with the right scope or role; `warden keys list` shows what each key may do.",
    ),
    "W-AUTH-006": _e(
        "Bad key request",
        "A key cannot be created as asked: an unknown agent, a tool the agent does not "
        "have, an unknown role, or an expiry in the past.",
        "Fix the `warden keys create` options as the message says.",
    ),
    "W-API-001": _e(
        "Request body unreadable",
        "The body is not UTF-8 JSON, holds a duplicate key, NaN or Infinity, or is not the "
        "JSON object the endpoint takes.",
        "Send one JSON object, UTF-8 encoded, with each key once and finite numbers only.",
    ),
    "W-API-002": _e(
        "Request too large",
        "The body is larger than the server's limit (`--max-body`, 1 MiB by default).",
        "Send less: large tool arguments belong in a file or object store, passed by reference.",
    ),
    "W-API-003": _e(
        "Request nested too deeply",
        "The JSON body nests objects or arrays deeper than the server's limit "
        "(`--max-depth`, 32 by default).",
        "Flatten the arguments; no tool contract needs that depth.",
    ),
    "W-API-004": _e(
        "Request does not match the API",
        "A field is missing, has the wrong type, or is not part of the endpoint's schema; "
        "the message names the field.",
        "Check the request against the HTTP API reference (docs/reference/http-api.md).",
    ),
    "W-API-005": _e(
        "Server overloaded",
        "More requests are in progress than the server's limit (`--max-inflight`), so it "
        "answers 503 with Retry-After at once rather than queue without bound or skip a "
        "check.",
        "Retry after the number of seconds in `Retry-After`, with backoff; add replicas if "
        "it persists.",
    ),
    "W-API-006": _e(
        "Not found",
        "No such endpoint, run, action or approval.",
        "Check the id and the path against the HTTP API reference.",
    ),
    "W-API-007": _e(
        "Internal server error",
        "The server hit a fault it did not expect while answering. Nothing executed that "
        "its action's record does not show; the response holds no details, the server's "
        "log does.",
        "Retry the request; if it persists, report it with the server's log around the time.",
    ),
    "W-IDM-001": _e(
        "Idempotency key reused with other arguments",
        "An idempotency key identifies one request. The same key arrived with a different "
        "tool or different arguments, so Warden cannot tell which one the caller meant.",
        "Use a new key for a new request; resend the original arguments to get the stored "
        "result of the first.",
    ),
    "W-IDM-002": _e(
        "Request with this idempotency key is in progress",
        "Another caller holds the same idempotency key and its call has not finished. Only "
        "one of them executes.",
        "Retry after a moment: once the first call finishes, the same key returns its "
        "stored result.",
    ),
    "W-APR-001": _e(
        "Approval does not match this call",
        "An approval is bound to a hash of the agent, the tool, the canonical arguments, "
        "the policy revision and the run. The call presented with it differs in at least "
        "one of them, for example changed arguments or a newer policy.",
        "Propose the call again: the changed call needs its own approval.",
    ),
    "W-APR-002": _e(
        "Approval expired",
        "The approval request passed its expiry before it was approved, or before the "
        "approved action ran.",
        "Propose the call again to open a new request; raise `approvals.expire_after` in "
        "warden.yaml if approvers need longer.",
    ),
    "W-APR-003": _e(
        "Self-approval refused",
        "The person approving is the one who requested the action (the caller or the "
        "person the run acts for). An approval must come from someone else.",
        "Ask another person who holds the required role.",
    ),
    "W-APR-004": _e(
        "Approval already used or decided",
        "Approvals are single use: this one already let its action run, or was denied, "
        "or has all the verdicts it needs.",
        "Propose the call again if it must run again; it needs a new approval.",
    ),
    "W-APR-005": _e(
        "Approver already gave a verdict",
        "A two-person rule needs distinct people; this approver already gave a verdict on "
        "this request.",
        "Ask a second person who holds a required role.",
    ),
    "W-APR-006": _e(
        "Approver does not hold a required role",
        "The request needs approval from the roles it lists. Roles are granted in "
        "warden.yaml under `roles:`; the approver holds none that is still needed.",
        "Ask a holder of the role, or grant the role under `roles:` in warden.yaml.",
    ),
    "W-APR-007": _e(
        "Approval was denied",
        "A person with a required role denied the request; the action will not run.",
        "Read the verdict's reason with `warden approvals show ID`; propose a different call.",
    ),
    "W-APR-008": _e(
        "Unknown approval",
        "No approval request has this id.",
        "List the open requests with `warden approvals list`.",
    ),
    "W-APR-009": _e(
        "Approval still pending",
        "The action waits for verdicts that have not all arrived.",
        "Wait for the approvers (`warden approvals show ID` says who is still needed).",
    ),
    "W-EXE-001": _o(
        "Tool failed",
        "The tool raised an exception on every attempt (its `retries` included). The error "
        "is stored under the idempotency key and returned again for the same key.",
        "Read the stored error with `warden runs show RUN`; fix the cause and propose the "
        "call with a new key.",
    ),
    "W-EXE-002": _o(
        "Tool timed out; outcome unknown",
        "The tool did not return within its `timeout_s`. It may still take effect, so the "
        "action is marked outcome_unknown and the run escalated; a late result is recorded "
        "if it arrives.",
        "Check the backend for the effect (the idempotency key identifies it); give the "
        "tool a `reconcile` hook so Warden can find out by itself.",
    ),
    "W-EXE-003": _o(
        "Interrupted; outcome unknown",
        "Warden stopped (a crash, a kill) while the tool was executing, and the tool has no "
        "`reconcile` hook, so nobody knows whether it took effect. Warden never re-runs it "
        "blindly: the action is marked outcome_unknown and its run escalated.",
        "Check the backend for the effect using the action's idempotency key; add a "
        "`reconcile` hook to the tool so restarts settle this by themselves.",
    ),
    "W-EXE-004": _o(
        "Interrupted before it took effect",
        "Warden stopped while the tool was executing; on restart the tool's `reconcile` "
        "hook reported that the effect never happened. The action is marked failed and its "
        "idempotency key released, so the same call may be proposed again.",
        "Nothing to fix; propose the call again if it is still wanted.",
    ),
    "W-EXE-005": _e(
        "Action cannot run",
        "Only an action that the gate allowed, or whose approval is complete, can execute; "
        "only an action left executing for its caller takes a reported outcome.",
        "Check the action's state with `warden runs show RUN`.",
    ),
    "W-EXE-006": _e(
        "Outcome already recorded differently",
        "An outcome was reported for an action whose outcome is already recorded, and the "
        "two differ (success and failure, or another result). Warden keeps the first one; "
        "the same report sent again gets the stored outcome back.",
        "Report each action's outcome once, and retry with the same body; read what was "
        "recorded with `warden runs show RUN`.",
    ),
    "W-AUD-001": _e(
        "Audit record altered",
        "The record's hash does not match its content and the chain before it: the record, "
        "or its hash, was changed after it was written.",
        "Treat the log as tampered from this record on; compare with an export or a backup "
        "taken earlier, and with the last signed checkpoint.",
    ),
    "W-AUD-002": _e(
        "Audit record missing",
        "The global sequence numbers have a gap before this record: a record was deleted.",
        "Treat the log as tampered; restore the missing record from an export or backup.",
    ),
    "W-AUD-003": _e(
        "Audit record out of place",
        "The record does not follow the one before it in its stream: records were "
        "reordered, or a record was inserted.",
        "Treat the log as tampered from this record on; compare with an earlier export.",
    ),
    "W-AUD-004": _e(
        "Audit log truncated",
        "A signed checkpoint saw more records in a stream than the log now holds: its tail "
        "was cut off.",
        "Restore the missing records from an export or backup taken after the checkpoint.",
    ),
    "W-AUD-005": _e(
        "Checkpoint signature invalid",
        "The checkpoint's Ed25519 signature does not verify with the public key, so the "
        "checkpoint cannot be trusted as an anchor.",
        "Verify with the public key the operator published (`--public-key`); fetch the "
        "checkpoint again from where it was stored.",
    ),
    "W-AUD-006": _e(
        "Audit log differs from the checkpoint",
        "A record the checkpoint covers has another hash than the checkpoint holds: the "
        "chain was rewritten after the checkpoint was signed.",
        "Treat the log as tampered; restore it from an export or backup that matches the "
        "checkpoint.",
    ),
    "W-AUD-007": _e(
        "Unreadable audit file",
        "An export or checkpoint file is not in Warden's format (the message names the line).",
        "Pass a file written by `warden audit export` or `warden audit checkpoint`.",
    ),
    "W-AUD-008": _e(
        "Signing key unavailable",
        "Signing a checkpoint needs the project's Ed25519 private key, and it is missing or "
        "unreadable.",
        "Run `warden audit checkpoint` once to create the key (.warden/audit-signing.key), or "
        "restore it from where the operator keeps it.",
    ),
    "W-RUN-001": _e(
        "Unknown run",
        "No run with this id is recorded in the store.",
        "List the runs with `warden runs list`.",
    ),
    "W-RUN-002": _e(
        "Run cannot resume",
        "The run has ended: it succeeded or failed, so there is nothing to go on with. (A "
        "run that waits, was stopped for a person, was killed or was interrupted can be "
        "resumed; one whose approval is still pending just stays waiting.)",
        "See the run's state with `warden runs show RUN`; start the task again as a new "
        "run if it must be redone.",
    ),
    "W-RUN-003": _s(
        "Turn limit reached",
        "The model took more turns than the runner's `max_turns` allows without finishing "
        "the task. The run stops and escalates.",
        "Read the escalation packet (`warden runs escalation RUN`): the agent is likely stuck; "
        "raise `max_turns` only if the task really needs more steps.",
    ),
    "W-RUN-004": _s(
        "Model unavailable; run escalated",
        "Every model on the run's route failed (after retries) for one step, so the run "
        "stopped and escalated instead of guessing.",
        "Check the provider's status and the error in the escalation packet, then resume "
        "the run with `warden runs resume RUN`.",
    ),
    "W-RUN-005": _e(
        "Run state unreadable",
        "The runner's saved conversation for this run is missing or in an unknown format, "
        "so it cannot be resumed safely.",
        "Start the task again as a new run; completed actions keep their results under "
        "their idempotency keys.",
    ),
    "W-MDL-001": _e(
        "Model server failing",
        "The model's server could not be reached or kept answering with server errors "
        "(5xx) after the adapter's retries with backoff.",
        "Check the base URL and the provider's status page; raise `max_retries` for a flaky proxy.",
    ),
    "W-MDL-002": _e(
        "Model rate limited",
        "The provider answered HTTP 429 on every attempt, Retry-After honoured.",
        "Lower the request rate or ask the provider for a higher limit; a route can fall "
        "back to another model.",
    ),
    "W-MDL-003": _e(
        "Model call timed out",
        "The model did not answer within the adapter's `timeout_s` on any attempt.",
        "Raise `timeout_s`, shorten the context, or route the step to a faster model.",
    ),
    "W-MDL-004": _e(
        "Model request refused",
        "The provider refused the request (HTTP 4xx other than 429): a bad API key, an "
        "unknown model, or a request it cannot read. Retrying would not help.",
        "Check the API key, the model name and the base URL; the message holds the "
        "provider's own words.",
    ),
    "W-MDL-005": _e(
        "Model answer unreadable",
        "The provider's answer did not follow its protocol (missing fields, an unknown "
        "content type), so no turn could be read from it.",
        "Check that the base URL points at a server speaking this adapter's protocol.",
    ),
    "W-MDL-006": _e(
        "Bad model script",
        "A scripted model's YAML file is malformed, or a task has no script.",
        "Fix the file at the line shown; every task the runner gets needs a script entry "
        "(or a `default:` script).",
    ),
    # --- evals (warden.evals) ---------------------------------------------------------------
    "W-EVL-001": _e(
        "Bad eval suite",
        "The suite file is malformed: a missing or unknown key, a case id used twice, a "
        "case without an agent, a call pattern or state check that cannot be read, a "
        "model given two ways, or no warden.yaml where the suite points.",
        "Fix the suite at the file:line shown; docs/reference/eval-suite.md lists every key.",
    ),
    "W-EVL-002": _e(
        "No usable model for a case",
        "A case has no model (neither the case nor the suite names one and no --model was "
        "given), or a --model value is neither a script file, `default`, nor PROVIDER:NAME.",
        "Give the suite a `model:` (for example `script: FILE`), or pass --model.",
    ),
    "W-EVL-003": _e(
        "A waiting run names no approval",
        "The case's run waits for people, but its escalation packet holds no approval id, "
        "so the case's verdicts cannot be given.",
        "Report it: a waiting run always names its approval. Run the case alone with "
        "--only and look at `warden runs escalation`.",
    ),
    "W-EVL-004": _e(
        "Eval backend unusable",
        "The suite's `backend:` is not module:function, the module has no such function, "
        "its `state()` is not a mapping, or a case checks `state` while the suite names no "
        "backend.",
        "Put the backend module beside warden.yaml, name it as module:function, and return "
        "a mapping of JSON values from state().",
    ),
    "W-EVL-005": _e(
        "Bad threshold",
        "A --threshold value is not KEY=VALUE with a known key, or its value is out of range.",
        "Use one of the keys in docs/reference/eval-suite.md, e.g. "
        "--threshold max_cost_regression=5%.",
    ),
    "W-EVL-006": _e(
        "No case selected",
        "--only named ids or tags that no case of the suite has.",
        "Check the ids and tags in the suite file.",
    ),
    "W-EVL-007": _e(
        "Baseline unusable",
        "The baseline file is missing, not JSON, of another format version, or lacks a figure.",
        "Write a fresh baseline with `warden eval run SUITE --save-baseline FILE` and commit it.",
    ),
    "W-EVL-008": _e(
        "Cannot add the run as a case",
        "The run has no saved runner state (no model turns to replay), the suite already "
        "has a case with that id, `cases:` is not the suite file's last key, or the suite "
        "would not load with the new case.",
        "Pick another id with --id, or move `cases:` to the end of the suite file.",
    ),
    # --- replay and policy what-if (warden.replay) -------------------------------------------
    "W-RPL-001": _e(
        "Policy revision not stored",
        "Replaying under the recorded policies needs the texts of the policy revision each "
        "decision was made under. A gate stores them in the database when it loads its "
        "policies; this revision was loaded by a gate that had no texts to store (a policy "
        "set built by hand in Python), or by a Warden older than replay.",
        "Replay under the project's current policies (`--policies current`) or a folder "
        "(`--policies PATH`) instead; see docs/how-to/replay-and-whatif.md.",
    ),
    "W-RPL-002": _e(
        "Recorded revision cannot be rebuilt",
        "The stored texts of a policy revision no longer compile to that revision: a "
        "condition this Warden rejects, a manifest shorthand naming an argument the tool "
        "no longer has, or sources that were changed in the database.",
        "Replay under the current policies (`--policies current`) to see what they decide; "
        "restore the tool's old arguments if the recorded revision must be replayed.",
    ),
    "W-RPL-003": _e(
        "Bad time window",
        "`--since` or `--until` is neither a duration back from now (`7d`, `12h`) nor a "
        "date and time (`2026-03-01`, `2026-03-01T09:00:00Z`), or the window ends before "
        "it starts.",
        "Pass e.g. `--since 7d`, or `--since 2026-03-01 --until 2026-03-08`.",
    ),
    # --- mcp (warden mcp proxy) ----------------------------------------------------------
    "W-MCP-001": _e(
        "Bad MCP proxy file",
        "The MCP proxy's file (mcp.yaml) is malformed: an unknown or missing key, an "
        "upstream with both or neither of `command` and `url`, a namespace or tool name an "
        "MCP client cannot call, or a sensitive argument the pinned schema does not have.",
        "Fix the file at the line shown; docs/how-to/mcp-proxy.md lists every key.",
    ),
    "W-MCP-002": _e(
        "Upstream MCP server unreachable",
        "The proxy could not start or connect to an upstream MCP server, or the server did "
        "not finish the MCP handshake in time. Its tools are hidden until it answers; the "
        "proxy keeps serving the other upstreams and tries again with backoff.",
        "Check the upstream's `command` (run it by hand) or `url`, and the proxy's log.",
    ),
    "W-MCP-003": _e(
        "Upstream lost during a call",
        "The upstream MCP server closed its connection (it crashed or was stopped) while a "
        "call was in flight. The action is recorded as failed; the call may or may not "
        "have taken effect upstream. The proxy reconnects to the server.",
        "Look at the upstream before repeating a write: `warden runs show RUN` has the "
        "action and its arguments.",
    ),
    "W-MCP-004": _e(
        "No agent for the MCP caller",
        "Every call through the proxy acts as one agent of the project. Over stdio the "
        "agent comes from `--agent` or `proxy.agent` in mcp.yaml; none was given, or it "
        "names no agent of the project.",
        "Pass --agent NAME (an agent in the project's manifests), or set `proxy.agent`.",
    ),
    "W-MCP-005": _e(
        "Upstream tool reported an error",
        "The upstream MCP server ran the call and answered with an error result "
        "(`isError`). The action is recorded as failed with the upstream's text.",
        "Read the upstream's message; it is passed to the MCP client unchanged.",
    ),
    "W-MCP-006": _e(
        "Upstream tool not available",
        "The tool is declared in mcp.yaml, but its upstream has not listed it: the upstream "
        "is not connected, or no longer offers a tool of that name. Without the "
        "upstream's schema (or one pinned with `input_schema`) Warden has no contract to "
        "check the arguments against, so the call is denied at the contract stage.",
        "Check the upstream (see W-MCP-002) and the tool's name under `tools:` in mcp.yaml.",
    ),
    # --- integrations (warden.integrations: LangChain, OpenAI Agents SDK, Pydantic AI) ---
    "W-INT-001": _e(
        "Framework not installed",
        "A module of warden.integrations was imported, but the agent framework it adapts "
        "is not installed. The adapters are optional extras of the warden package.",
        "Install the extra the message names, e.g. `pip install 'warden[langchain]'`, "
        "`'warden[openai-agents]'` or `'warden[pydantic-ai]'`.",
    ),
    "W-INT-002": _e(
        "No run id for a framework call",
        "Every tool call belongs to a Warden run, and the run must stay the same across an "
        "approval pause so that the resumed call finds its approval. The adapter found no "
        "run id: no `run_id` was given, and the framework supplied none (a LangGraph "
        "thread id, a Pydantic AI conversation id).",
        "Pass `run_id=` to the adapter, or run the agent with a LangGraph `thread_id` / a "
        "Pydantic AI `conversation_id`; see docs/how-to/langchain.md.",
    ),
    "W-INT-003": _e(
        "Approved in the framework, not in Warden",
        "The OpenAI Agents SDK was told to run a call (`RunState.approve`) while Warden's "
        "approval request for it is still pending. An approval given in a framework never "
        "replaces Warden's: the roles, the number of approvers and the no-self-approval "
        "rule are checked in Warden only. The call did not run and the run ended (the SDK "
        "raises `ToolInputGuardrailTripwireTriggered`; its `output_info` carries this code).",
        "Have a person with the required role approve the request in Warden (`warden "
        "approvals approve ID`), then answer the run's interruptions with "
        "`WardenTools.results(state)` and resume; see docs/how-to/openai-agents.md.",
    ),
    "W-INT-004": _s(
        "Warden stopped the run",
        "A tool call of a framework-driven run was stopped by Warden: a budget, the loop "
        "detector, a kill switch, the circuit breaker, or an action whose outcome is "
        "unknown. The message carries the code of the check that stopped it. The run is "
        "recorded as escalated (or killed).",
        "Look at the run with `warden runs show RUN`; the code in the message has its own "
        "page saying what to change.",
    ),
    "W-INT-005": _e(
        "Adapter used wrongly",
        "A Warden adapter was built for an agent no manifest declares, or a tool the "
        "adapter made was called outside it (a LangChain tool of `WardenMiddleware` "
        "invoked without the middleware).",
        "Name an agent declared in the project, and give the adapter's tools to the "
        "framework together with the adapter (the middleware, toolset or capability).",
    ),
}


class WardenError(Exception):
    """Base of every exception Warden raises on purpose."""

    code: str
    message: str
    hint: str

    def __init__(self, code: str, message: str, *, hint: str | None = None) -> None:
        if code not in CODES:  # pragma: no cover - a bug in Warden itself
            raise ValueError(f"unregistered error code {code}")
        self.code = code
        self.message = message
        self.hint = hint if hint is not None else CODES[code].fix
        super().__init__(self.render())

    def render(self) -> str:
        return f"{self.code}: {self.message}\n  fix: {self.hint}"


class ConfigError(WardenError):
    """A file a user wrote is wrong: names the file, the line and the field."""

    file: str | None
    line: int | None
    field: str | None

    def __init__(
        self,
        code: str,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.field = field
        super().__init__(code, message, hint=hint)

    @property
    def location(self) -> str:
        if self.file is None:
            return ""
        return f"{self.file}:{self.line}" if self.line else self.file

    def render(self) -> str:
        where = f"{self.location}: " if self.file else ""
        what = f"{self.field}: " if self.field else ""
        return f"{where}{self.code}: {what}{self.message}\n  fix: {self.hint}"


class ProjectError(ConfigError):
    """warden.yaml is missing or wrong."""


class ManifestError(ConfigError):
    """An agent manifest is wrong."""


class PolicyError(ConfigError):
    """A policy file or one of its conditions is wrong."""


class PolicyTestError(ConfigError):
    """A policy test file is wrong, or no test ran."""


class ToolDefinitionError(WardenError):
    """A tool cannot be registered as declared."""


class GateError(WardenError):
    """The gate was used wrongly."""


class StoreError(WardenError):
    """State could not be read or written."""


class IdempotencyError(WardenError):
    """An idempotency key was reused with other arguments, or its request is in progress."""


class ApprovalError(WardenError):
    """An approval verdict or an approved execution was refused."""


class ExecutionError(WardenError):
    """An action cannot execute in its state."""


class AuditError(WardenError):
    """The audit log, an export or a checkpoint does not verify.

    `seq` and `stream` name the first bad record when there is one.
    """

    seq: int | None
    stream: str | None

    def __init__(
        self,
        code: str,
        message: str,
        *,
        seq: int | None = None,
        stream: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.seq = seq
        self.stream = stream
        super().__init__(code, message, hint=hint)


class RunError(WardenError):
    """A run that is not recorded, or cannot resume."""


class EvalError(WardenError):
    """An eval suite, case or baseline that cannot be used."""


class IntegrationError(WardenError):
    """An adapter cannot go on: the framework is missing (W-INT-001), there is no run id
    (W-INT-002), the framework approved what Warden has not (W-INT-003), Warden stopped the
    run (W-INT-004), or the adapter is used wrongly (W-INT-005)."""


class ReplayError(WardenError):
    """Recorded decisions that cannot be re-decided (no inputs, an unknown revision)."""


class ModelError(WardenError):
    """A model call that failed after the adapter's retries."""

    retryable: bool
    """True when a later attempt could succeed (rate limits, timeouts, server errors)."""

    def __init__(
        self, code: str, message: str, *, retryable: bool = False, hint: str | None = None
    ) -> None:
        self.retryable = retryable
        super().__init__(code, message, hint=hint)


class AuthError(WardenError):
    """A request without valid credentials, or whose key may not do what it asks."""


class ApiError(WardenError):
    """An HTTP request the server refuses to read (malformed, too large, too deep)."""


class McpError(WardenError):
    """The MCP proxy cannot serve: an upstream is unreachable or lost, or a caller has no
    agent."""


class McpConfigError(ConfigError):
    """The MCP proxy's file (mcp.yaml) is wrong."""

"""IAM for the local mode and the policy contract tests: evaluate statements (``policy``),
resolve a synthesized template's intrinsics (``template``), map botocore calls to IAM
requests (``requests``) and enforce a function's synthesized policy on its calls (``enforce``)."""

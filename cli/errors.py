"""The CLI's exit codes, and every failure as one line that says what to do.

A script tells the failures apart by the exit code alone; docs/troubleshooting.md lists each line
(tests/integration/test_cli_errors.py provokes each and checks the table against what is printed).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ProxyConnectionError,
    ReadTimeoutError,
    SSOError,
    SSOTokenLoadError,
    TokenRetrievalError,
    UnauthorizedSSOTokenError,
)


class Exit(IntEnum):
    OK = 0
    #: The run finished, and some log groups had errors (or a check failed: selftest, fleet-status).
    WORK_ERRORS = 1
    BAD_INPUT = 2
    ACCESS = 3
    NOT_FOUND = 4
    UNREACHABLE = 5
    #: ``plan --detailed-exitcode`` found changes to make. Terraform says 2; 2 is bad input here (argparse's usage errors).
    CHANGES_PENDING = 6
    INTERRUPTED = 130


@dataclass
class CliError(Exception):
    code: Exit
    message: str
    fix: str

    def line(self) -> str:
        return f"log-group-governor: {self.message}; fix: {self.fix}"

    def as_dict(self) -> dict[str, object]:
        return {"error": self.message, "fix": self.fix, "exitCode": int(self.code)}


_REFUSED = frozenset({"InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch", "InvalidSignatureException",
                      "AuthFailure", "InvalidAccessKeyId", "MissingAuthenticationToken", "IncompleteSignature"})
_EXPIRED = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})
_DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError", "Forbidden"})
_NOT_FOUND = frozenset({"ResourceNotFoundException", "NoSuchBucket", "NotFoundException", "QueueDoesNotExist",
                        "AWS.SimpleQueueService.NonExistentQueue", "StackSetNotFoundException"})
_UNREACHABLE = (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError, ProxyConnectionError)
_LOGIN = "run `aws configure` or `aws sso login`, or pass --profile"


def explain(error: BaseException, *, endpoint_url: str | None = None, profile: str | None = None) -> CliError | None:
    """The one line (and exit code) for an AWS failure; None for anything else (a bug: the traceback shows)."""
    if isinstance(error, (NoCredentialsError, PartialCredentialsError)):
        return CliError(Exit.ACCESS, "no AWS credentials found", _LOGIN)
    if isinstance(error, (CredentialRetrievalError, SSOTokenLoadError, UnauthorizedSSOTokenError, TokenRetrievalError, SSOError)):
        return CliError(Exit.ACCESS, f"the AWS credentials could not be loaded ({error})",
                        f"refresh them: `aws sso login{f' --profile {profile}' if profile else ''}`, or new session credentials")
    if isinstance(error, ProfileNotFound):
        return CliError(Exit.ACCESS, f"AWS profile {profile or ''} not found".replace("  ", " "),
                        "pass a profile that `aws configure list-profiles` lists")
    if isinstance(error, NoRegionError):
        return CliError(Exit.BAD_INPUT, "no AWS region", "pass --region, or set AWS_REGION")
    if isinstance(error, _UNREACHABLE):
        where = getattr(error, "kwargs", {}).get("endpoint_url") or endpoint_url or "the AWS endpoint"
        return CliError(Exit.UNREACHABLE, f"cannot reach {where} ({type(error).__name__})",
                        "check --endpoint-url and --region, the network, and any proxy (HTTPS_PROXY)")
    if isinstance(error, ClientError):
        return _client_error(error)
    if isinstance(error, BotoCoreError):
        return CliError(Exit.WORK_ERRORS, f"AWS call failed: {error}", "run again with --debug for the traceback")
    return None


def _client_error(error: ClientError) -> CliError:
    code = error.response.get("Error", {}).get("Code", "")
    message = error.response.get("Error", {}).get("Message", "")
    operation = error.operation_name
    if code in _EXPIRED:
        return CliError(Exit.ACCESS, "the AWS credentials have expired", "refresh them (`aws sso login`, or new session credentials)")
    if code in _REFUSED:
        return CliError(Exit.ACCESS, f"the AWS credentials were refused ({code})", f"check the keys or the profile; {_LOGIN}")
    if code in _DENIED:
        return CliError(Exit.ACCESS, f"access denied to {operation}",
                        "give the caller that action (docs/operations.md lists each command's rights)")
    # CloudFormation says a stack is missing with a ValidationError ("Stack with id X does not exist").
    if operation == "DescribeStacks" and code == "ValidationError" and "does not exist" in message:
        return CliError(Exit.NOT_FOUND, f"stack not found ({message})", "check --stack-name and --region (`aws cloudformation list-stacks`)")
    if code in _NOT_FOUND:
        return CliError(Exit.NOT_FOUND, f"not found: {operation} answered {code}{f' ({message})' if message else ''}",
                        "check the name and --region (the stack's outputs name it: pass --stack-name)")
    return CliError(Exit.WORK_ERRORS, f"AWS refused {operation}: {code}{f': {message}' if message else ''}",
                    "see docs/troubleshooting.md; run again with --debug for the traceback")

"""Who may do what. With settings.auth == "off" (embedded, single user on 127.0.0.1) everything is allowed.
With "tokens": `Authorization: Bearer TOKEN`; reading needs a token unless settings.public_read; writing
needs a user or admin token; changing a job needs its owner or an admin. A client (by IP address) whose
tokens failed too often lately is answered 429 with Retry-After for any token, valid or not, until its
failures leave the window (backend.api.security.FailedAuthLimiter): guessing tokens stays slow.
"""

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from backend.models import Job, User
from backend.store import hash_token, new_token, user_for_token  # noqa: F401  (re-exported)

_CHALLENGE = {"WWW-Authenticate": "Bearer"}
_bearer = HTTPBearer(auto_error=False, description="an API token: `prunelab user add NAME` prints one")
# EventSource and download links cannot send headers: reads may pass ?access_token=TOKEN instead.
_query_token = APIKeyQuery(
    name="access_token", auto_error=False, description="the API token, for reads that cannot send headers"
)
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
QueryToken = Annotated[str | None, Depends(_query_token)]


def _unauthorized(message: str) -> HTTPException:
    # The API's handler turns it into {"detail": message, "errors": [{"message": message, ...}]}.
    return HTTPException(status.HTTP_401_UNAUTHORIZED, message, headers=_CHALLENGE)


def _lookup(sessions, token: str) -> User | None:
    with sessions() as session:
        user = user_for_token(session, token)
        if user is not None:
            session.expunge(user)
        return user


async def _user_for(request: Request, token: str | None) -> User | None:
    """The token's user; raises 401 for a token that is given but unknown or revoked, 429 while this client
    has failed too often."""
    if not token or not token.strip():
        return None
    limiter = request.app.state.auth_failures
    client = request.client.host if request.client else "unknown"
    wait = limiter.retry_after(client)
    if wait is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"too many failed authentications from {client}; try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    user = await run_in_threadpool(_lookup, request.app.state.sessions, token.strip())
    if user is None:
        limiter.failed(client)
        raise _unauthorized("invalid or revoked API token")
    return user


# The dependencies are async so that, with auth off, they cost no threadpool hop; the token lookup itself
# runs in the threadpool.
async def reader(request: Request, bearer: Bearer, access_token: QueryToken) -> User | None:
    """The reading user (None when auth is off or for anonymous public reading)."""
    settings = request.app.state.settings
    if settings.auth == "off":
        return None
    user = await _user_for(request, bearer.credentials if bearer else access_token)
    if user is None and not settings.public_read:
        raise _unauthorized("an API token is required (Authorization: Bearer TOKEN)")
    return user


async def writer(request: Request, bearer: Bearer) -> User | None:
    """The writing user (None when auth is off); viewers get 403."""
    settings = request.app.state.settings
    if settings.auth == "off":
        return None
    user = await _user_for(request, bearer.credentials if bearer else None)
    if user is None:
        raise _unauthorized("an API token is required to change anything (Authorization: Bearer TOKEN)")
    if user.role == "viewer":
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"user {user.name!r} is a viewer and may only read")
    return user


Reader = Annotated[User | None, Depends(reader)]
Writer = Annotated[User | None, Depends(writer)]


def check_can_modify(user: User | None, job: Job) -> None:
    """Owner or admin may change a job (always allowed when auth is off, i.e. user is None)."""
    if user is None or user.role == "admin" or job.owner_id == user.id:
        return
    raise HTTPException(
        status.HTTP_403_FORBIDDEN,
        f"job {job.id} belongs to {job.owner.name if job.owner else 'nobody'}; "
        "only its owner or an admin may change it",
    )

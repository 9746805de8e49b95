"""The one synthetic world every domain's generator draws from, so that domains agree:
the users who send events are the customers who order, own accounts and belong to tenants;
devices and AI runs belong to the same tenants. Fixed size, deterministic per seed,
independent of how many rows a day has."""

from __future__ import annotations

import datetime as dt
import itertools
import random
from dataclasses import dataclass
from functools import lru_cache

REGIONS = {"us-east-1": 0.45, "eu-west-1": 0.35, "ap-southeast-1": 0.20}
FIRST_NAMES = [
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "Ken",
    "Radia",
    "Tim",
    "Margaret",
    "John",
    "Katherine",
    "Dennis",
    "Hedy",
    "Linus",
]
LAST_NAMES = [
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Allen",
    "Thompson",
    "Perlman",
    "Lee",
    "Hamilton",
    "McCarthy",
    "Johnson",
    "Ritchie",
    "Lamarr",
    "Torvalds",
]
# Physical limits and normal operating band of each sensor kind.
SENSOR_KINDS = {
    "temperature": ((-40.0, 125.0), (18.0, 26.0)),
    "humidity": ((0.0, 100.0), (30.0, 60.0)),
    "pressure": ((300.0, 1100.0), (990.0, 1030.0)),
}


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    name: str
    region: str
    monthly_budget_usd: float


@dataclass(frozen=True)
class User:
    user_id: str
    email: str
    first_name: str
    last_name: str
    region: str
    tenant_id: str
    created_at: dt.datetime


@dataclass(frozen=True)
class Account:
    account_id: str
    customer_id: str  # a user_id
    currency: str
    opened_at: dt.datetime


@dataclass(frozen=True)
class Device:
    device_id: str
    tenant_id: str
    region: str
    kind: str


TENANTS = (
    Tenant("tenant-acme", "Acme Corp", "us-east-1", 3000.0),
    Tenant("tenant-globex", "Globex", "eu-west-1", 1500.0),
    Tenant("tenant-initech", "Initech", "us-east-1", 800.0),
    Tenant("tenant-umbrella", "Umbrella", "ap-southeast-1", 1200.0),
    Tenant("tenant-hooli", "Hooli", "eu-west-1", 400.0),
)
TENANT_WEIGHTS = (0.40, 0.25, 0.15, 0.12, 0.08)


def new_uuid(rng: random.Random) -> str:
    """A version-4 UUID from the generator's own random stream (deterministic).

    The value `uuid.UUID(int=..., version=4)` gives, formatted without building the object (ten times faster).
    """
    bits = rng.getrandbits(128) & ~(0xC000 << 48) | (0x8000 << 48)
    text = "%032x" % (bits & ~(0xF000 << 64) | (4 << 76))
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


@dataclass(frozen=True)
class Population:
    tenants: tuple[Tenant, ...]
    users: tuple[User, ...]
    user_cum_weights: tuple[float, ...]  # heavy users first: Zipf-like activity
    accounts: tuple[Account, ...]
    devices: tuple[Device, ...]

    def pick_user(self, rng: random.Random) -> User:
        return rng.choices(self.users, cum_weights=self.user_cum_weights)[0]

    def users_as_of(self, day: dt.date) -> list[User]:
        """Users registered before the end of `day`."""
        return [u for u in self.users if u.created_at.date() <= day]


@lru_cache(maxsize=4)
def population(
    seed: int = 7, users: int = 5_000, devices: int = 200, epoch: dt.date = dt.date(2023, 1, 1)
) -> Population:
    """Users registered between `epoch` and a year later; one account for most users; devices per tenant."""
    rng = random.Random(f"population-{seed}")
    people = []
    for _ in range(users):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        user_id = new_uuid(rng)
        tenant = rng.choices(TENANTS, weights=TENANT_WEIGHTS)[0]
        created = dt.datetime.combine(epoch, dt.time(), tzinfo=dt.UTC) + dt.timedelta(
            seconds=rng.randrange(2 * 365 * 86_400)
        )
        people.append(
            User(
                user_id,
                f"{first}.{last}.{user_id[:8]}@example.com".lower(),
                first,
                last,
                rng.choices(list(REGIONS), weights=list(REGIONS.values()))[0],
                tenant.tenant_id,
                created,
            )
        )
    people.sort(key=lambda u: u.created_at)
    order = list(range(users))
    rng.shuffle(order)  # activity rank independent of registration date
    weights = [0.0] * users
    for rank, index in enumerate(order):
        weights[index] = 1.0 / (rank + 1) ** 0.8
    accounts = tuple(
        Account(
            new_uuid(rng),
            user.user_id,
            rng.choice(["USD", "EUR", "GBP"]),
            user.created_at + dt.timedelta(hours=rng.randrange(1, 72)),
        )
        for user in people
        if rng.random() < 0.8
    )
    fleet = []
    for _ in range(devices):
        tenant = rng.choices(TENANTS, weights=TENANT_WEIGHTS)[0]
        fleet.append(Device(new_uuid(rng), tenant.tenant_id, tenant.region, rng.choice(list(SENSOR_KINDS))))
    return Population(TENANTS, tuple(people), tuple(itertools.accumulate(weights)), accounts, tuple(fleet))

import threading
from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from sqlmodel import select

from agor import auth, db
from agor.errors import Conflict, Forbidden, InvalidInput, NotFound, TooManyAttempts
from agor.models import Invite, Role, User, utcnow

from .conftest import PASSWORD


def test_first_owner_only_once(settings):
    assert not auth.has_users()  # the first visit offers to create the owner
    owner = auth.create_first_owner('Boss@Example.com', 'Boss', PASSWORD)
    assert auth.has_users()
    assert owner.role == 'owner' and owner.email == 'boss@example.com'
    with pytest.raises(Conflict) as refused:
        auth.create_first_owner('other@example.com', 'Other', PASSWORD)
    assert refused.value.message == 'The owner account already exists. Log in instead.'
    with db.read() as session:
        assert [u.email for u in session.exec(select(User)).all()] == ['boss@example.com']


def test_login_is_case_insensitive_and_rejects_wrong_password(make_user):
    owner = make_user('owner')
    assert auth.authenticate('OWNER@example.com', PASSWORD).id == owner.id
    with pytest.raises(InvalidInput) as refused:
        auth.authenticate('owner@example.com', 'nope-nope')
    assert refused.value.message == 'Wrong email or password.'
    with pytest.raises(InvalidInput, match='Wrong email or password'):
        auth.authenticate('ghost@example.com', PASSWORD)


def test_repeated_bad_logins_are_slowed_down(make_user, monkeypatch):
    make_user('owner')
    monkeypatch.setattr(auth, 'throttle', auth.LoginThrottle(clock=lambda: 1000.0))  # a second of argon2 is no wait
    for _ in range(auth.LoginThrottle.PER_ADDRESS_AND_ACCOUNT):
        with pytest.raises(InvalidInput):
            auth.authenticate('owner@example.com', 'wrong-password', '10.0.0.1')
    with pytest.raises(TooManyAttempts, match='Try again in'):
        auth.authenticate('owner@example.com', PASSWORD, '10.0.0.1')
    assert auth.authenticate('owner@example.com', PASSWORD, '10.0.0.2').email == 'owner@example.com'  # elsewhere


def test_two_tabs_logging_in_at_once_both_get_in(make_user):
    make_user('owner')
    assert parallel_logins('owner@example.com', PASSWORD, '10.0.0.5', count=2) == ['logged in'] * 2
    throttle = auth.LoginThrottle()  # the same, in the order that threads may or may not meet
    first, second = throttle.start('me@example.com', '10.0.0.5'), throttle.start('me@example.com', '10.0.0.6')
    throttle.succeed(first)  # forgives the account's failures, the second's included
    throttle.succeed(second)


def test_a_correct_password_takes_back_only_its_own_attempt_at_the_address():
    throttle = auth.LoginThrottle()
    for i in range(throttle.PER_ADDRESS - 1):  # a password sprayed from one address
        throttle.start(f'user{i}@example.com', '10.0.4.4')
    throttle.succeed(throttle.start('me@example.com', '10.0.4.4'))  # the sprayer's own account, or a teammate's
    throttle.start('last@example.com', '10.0.4.4')  # the 100th failure there
    with pytest.raises(TooManyAttempts):
        throttle.start('more@example.com', '10.0.4.4')


def parallel_logins(email: str, password: str, address: str, count: int = 12) -> list[str]:
    """`count` logins released at once from threads (as from that many tabs): what each one was told."""
    barrier = threading.Barrier(count)
    outcomes: list[str] = []

    def log_in() -> None:
        barrier.wait()
        try:
            auth.authenticate(email, password, address)
            outcomes.append('logged in')
        except TooManyAttempts:
            outcomes.append('throttled')
        except InvalidInput:
            outcomes.append('wrong password')
    threads = [threading.Thread(target=log_in) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_parallel_wrong_passwords_are_checked_at_most_five_times(make_user):
    make_user('owner')
    outcomes = parallel_logins('owner@example.com', 'wrong-password', '10.0.0.1')
    assert sorted(outcomes) == ['throttled'] * 7 + ['wrong password'] * 5


def test_an_attacker_cannot_lock_a_teammate_out_from_the_same_address(make_user):
    """Same office, same address: the attacker's failures on the owner's account throttle the attacker, while Carol,
    whose account has not failed, logs in with her password."""
    make_user('owner')
    carol = make_user('member', 'Carol')
    assert 'throttled' in parallel_logins('owner@example.com', 'wrong-password', '10.0.0.1')
    for email in ('nobody@example.com', 'ghost@example.com'):  # spraying other accounts from there too
        with pytest.raises(InvalidInput):
            auth.authenticate(email, 'wrong-password', '10.0.0.1')
    assert auth.authenticate('carol@example.com', PASSWORD, '10.0.0.1').id == carol.id


def test_the_throttles_three_allowances():
    throttle = auth.LoginThrottle()
    for i in range(throttle.PER_ACCOUNT):  # one account guessed from many addresses
        throttle.start('alice@example.com', f'10.0.0.{i}')
    with pytest.raises(TooManyAttempts):
        throttle.start('alice@example.com', '10.0.1.1')
    for i in range(throttle.PER_ADDRESS):  # one address spraying many accounts
        throttle.start(f'user{i}@example.com', '10.0.1.1')
    with pytest.raises(TooManyAttempts):
        throttle.start('new@example.com', '10.0.1.1')
    for _ in range(throttle.PER_ADDRESS + 1):  # correct passwords are not failures, for the address either
        throttle.succeed(throttle.start('carol@example.com', '10.0.2.2'))
    for _ in range(throttle.PER_ADDRESS_AND_ACCOUNT - 1):
        throttle.start('bob@example.com', '10.0.3.3')
    throttle.succeed(throttle.start('bob@example.com', '10.0.3.3'))  # Bob remembered: his failures are forgiven
    for _ in range(throttle.PER_ADDRESS_AND_ACCOUNT):
        throttle.start('bob@example.com', '10.0.3.3')
    with pytest.raises(TooManyAttempts) as refused:
        throttle.start('bob@example.com', '10.0.3.3')
    assert refused.value.message == 'Too many failed logins. Try again in 1 s.'  # the first wait: 1 s


def test_ipv6_addresses_are_throttled_like_any_other():
    throttle = auth.LoginThrottle()
    for _ in range(throttle.PER_ADDRESS_AND_ACCOUNT):
        throttle.start('eve@example.com', '2001:db8::1')
    with pytest.raises(TooManyAttempts):
        throttle.start('eve@example.com', '2001:db8::1')


def test_passwords_are_stored_as_argon2(make_user):
    user = make_user('member')
    assert user.password_hash.startswith('$argon2id$') and PASSWORD not in user.password_hash


def test_a_hash_with_older_parameters_is_upgraded_at_login(make_user):
    user = make_user('member')
    with db.transaction() as session:
        session.get(User, user.id).password_hash = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1).hash(
            PASSWORD)
    auth.authenticate(user.email, PASSWORD)
    with db.read() as session:
        stored = session.get(User, user.id).password_hash
    assert not auth._hasher.check_needs_rehash(stored) and PASSWORD not in stored
    assert auth.authenticate(user.email, PASSWORD).id == user.id  # the new hash is of the same password


def test_roles_are_checked_on_every_action(make_user):
    owner, admin, member = make_user('owner'), make_user('admin'), make_user('member')
    with pytest.raises(Forbidden, match='cannot create accounts'):
        auth.create_user(member, 'x@example.com', 'X', PASSWORD, Role.viewer)
    with pytest.raises(Forbidden) as refused:
        auth.set_active(member, admin.id, False)
    assert refused.value.message == 'Your role (member) cannot deactivate accounts; it needs admin or higher.'
    with pytest.raises(Forbidden, match='cannot grant the role owner'):
        auth.set_role(admin, member.id, Role.owner)
    with pytest.raises(Forbidden) as refused:
        auth.set_role(member, admin.id, Role.viewer)
    assert refused.value.message == 'Your role (member) cannot change roles; it needs admin or higher.'
    for target in (owner, make_user('admin')):  # an admin changes neither an owner's role nor another admin's
        with pytest.raises(Forbidden) as refused:
            auth.set_role(admin, target.id, Role.viewer)
        assert refused.value.message == 'Only an owner can change the role of an admin or owner.'
        assert auth.get_user(target.id).role == target.role
    assert auth.set_role(admin, member.id, Role.viewer).role == 'viewer'
    with pytest.raises(InvalidInput, match='last owner'):
        auth.set_role(owner, owner.id, Role.admin)


def test_one_of_two_owners_can_be_demoted_the_last_active_one_cannot(make_user):
    olivia, other = make_user('owner'), make_user('admin')
    auth.set_role(olivia, other.id, Role.owner)
    assert auth.set_role(olivia, other.id, Role.admin).role == 'admin'  # Olivia stays owner
    auth.set_role(olivia, other.id, Role.owner)
    auth.set_active(olivia, other.id, False)  # a deactivated owner does not count
    with pytest.raises(InvalidInput) as refused:
        auth.set_role(olivia, olivia.id, Role.admin)
    assert refused.value.message == 'The last owner cannot be demoted: make someone else owner first.'
    assert auth.get_user(olivia.id).role == 'owner'
    assert auth.set_role(olivia, olivia.id, Role.owner).role == 'owner'  # choosing the role she has is no demotion


def test_who_may_deactivate_whom(make_user):
    """Admins deactivate members and viewers, owners anyone but themselves. The last active owner can never be
    deactivated: only another active owner could, and then that one remains."""
    olivia, admin, other_admin, member = make_user('owner'), make_user('admin'), make_user('admin'), make_user()
    with pytest.raises(InvalidInput) as refused:
        auth.set_active(admin, admin.id, False)
    assert refused.value.message == 'You cannot deactivate your own account.'
    for target in (other_admin, olivia):
        with pytest.raises(Forbidden) as refused:
            auth.set_active(admin, target.id, False)
        assert refused.value.message == 'Only an owner can deactivate an admin or owner.'
    assert not auth.set_active(admin, member.id, False).active
    second_owner = auth.set_role(olivia, other_admin.id, Role.owner)
    assert not auth.set_active(olivia, second_owner.id, False).active
    assert auth.set_active(olivia, second_owner.id, True).active
    assert [u.active for u in auth.list_users() if u.role == 'owner'] == [True, True]


def test_only_admins_invite_and_an_open_invite_takes_any_email(make_user):
    admin, member = make_user('admin'), make_user('member')
    with pytest.raises(Forbidden) as refused:
        auth.create_invite(member, Role.viewer)
    assert refused.value.message == 'Your role (member) cannot invite people; it needs admin or higher.'
    token = auth.create_invite(admin, Role.member)
    assert auth.invite_for(token).email is None
    assert auth.accept_invite(token, 'anyone@example.com', 'Anyone', PASSWORD).role == 'member'


def test_deactivated_users_cannot_log_in(make_user):
    owner, member = make_user('owner'), make_user('member')
    auth.set_active(owner, member.id, False)
    with pytest.raises(InvalidInput):
        auth.authenticate(member.email, PASSWORD)
    assert auth.get_user(member.id) is None
    assert auth.get_user(owner.id).id == owner.id and auth.get_user(None) is None and auth.get_user('') is None
    assert [u.name for u in auth.list_users()] == ['Member 1', 'Olivia Owner']  # by name, the deactivated too


def test_invite_link_creates_account_with_its_role_once(make_user):
    admin = make_user('admin')
    token = auth.create_invite(admin, Role.viewer, 'new@example.com')
    with pytest.raises(InvalidInput, match='for new@example.com'):
        auth.accept_invite(token, 'other@example.com', 'Other', PASSWORD)
    user = auth.accept_invite(token, 'new@example.com', 'Newbie', PASSWORD)
    assert user.role == 'viewer'
    with pytest.raises(InvalidInput) as refused:
        auth.accept_invite(token, 'new@example.com', 'Again', PASSWORD)
    assert refused.value.message == 'This invite link has already been used.'
    with pytest.raises(NotFound) as refused:
        auth.invite_for('forged-token')
    assert refused.value.message == 'This invite link is not valid.'


def test_an_expired_invite_says_so(make_user):
    token = auth.create_invite(make_user('admin'), Role.member)
    with db.transaction() as session:
        session.exec(select(Invite)).one().expires_at = utcnow() - timedelta(seconds=1)
    with pytest.raises(InvalidInput) as refused:
        auth.accept_invite(token, 'late@example.com', 'Late', PASSWORD)
    assert refused.value.message == 'This invite link has expired. Ask an admin for a new one.'


def test_bad_account_input_has_clear_messages(make_user):
    owner = make_user('owner')
    with pytest.raises(InvalidInput, match='not a valid email'):
        auth.create_user(owner, 'not-an-email', 'X', PASSWORD, Role.member)
    with pytest.raises(InvalidInput, match='at least 8'):
        auth.create_user(owner, 'x@example.com', 'X', 'short', Role.member)
    with pytest.raises(Conflict, match='already exists'):
        auth.create_user(owner, 'OWNER@example.com', 'X', PASSWORD, Role.member)


def test_a_display_name_has_1_to_80_characters_and_a_password_at_least_8(make_user):
    owner = make_user('owner')
    for name in ('', '   ', 'n' * 81):
        with pytest.raises(InvalidInput) as refused:
            auth.create_user(owner, 'x@example.com', name, PASSWORD, Role.member)
        assert refused.value.message == 'Enter a display name (at most 80 characters).'
    with pytest.raises(InvalidInput) as refused:
        auth.create_user(owner, 'x@example.com', 'X', 'p' * 7, Role.member)
    assert refused.value.message == 'The password needs at least 8 characters.'
    assert auth.create_user(owner, 'x@example.com', ' ' + 'n' * 80 + ' ', 'p' * 8, Role.member).name == 'n' * 80
    assert auth.authenticate('x@example.com', 'p' * 8).email == 'x@example.com'


def test_people_get_avatar_colours_that_tell_them_apart(make_user):
    colours = {make_user('member', f'Person {i}').avatar_color for i in range(12)}
    assert len(colours) > 3 and colours <= set(auth.AVATAR_COLORS)


def test_changing_someone_who_does_not_exist_says_so(make_user):
    owner = make_user('owner')
    for change in (lambda: auth.set_role(owner, 'no-such-id', Role.member),
                   lambda: auth.set_active(owner, 'no-such-id', False)):
        with pytest.raises(NotFound) as refused:
            change()
        assert refused.value.message == 'No such user.'


def test_a_throttled_login_is_told_how_long_to_wait_and_the_wait_doubles_up_to_five_minutes():
    now = [0.0]
    throttle = auth.LoginThrottle(clock=lambda: now[0])

    def told() -> str:
        with pytest.raises(TooManyAttempts) as refused:
            throttle.start('alice@example.com', '10.0.0.1')
        return refused.value.message

    for _ in range(throttle.PER_ADDRESS_AND_ACCOUNT):
        throttle.start('alice@example.com', '10.0.0.1')
    waits = []
    for _ in range(11):  # each further failure, let through once its wait is over, doubles the next wait
        message = told()
        waits.append(int(message.removeprefix('Too many failed logins. Try again in ').removesuffix(' s.')))
        now[0] += waits[-1]
        throttle.start('alice@example.com', '10.0.0.1')
    assert waits == [2, 3, 5, 9, 17, 33, 65, 129, 257, 301, 301]  # 1, 2, 4 ... s, then at most 300 s (+1 rounding up)


def test_an_email_address_may_have_254_characters_not_more(make_user):
    owner = make_user('owner')

    def address(length: int) -> str:
        domain = 'example.com'
        return 'a' * (length - len(domain) - 1) + '@' + domain

    invite = auth.create_invite(owner, Role.member, address(254))
    assert invite is not None
    with pytest.raises(InvalidInput, match='is not a valid email address'):
        auth.create_invite(owner, Role.member, address(255))

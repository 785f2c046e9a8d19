"""Settings → Profile → General: display name and avatar (an uploaded image or the generated initials); email and
role are shown, not changed here."""
from __future__ import annotations

from nicegui import events, ui

from agor import profile

from ..act import FAILED, act
from ..avatar import avatar
from .section import Section


async def build(user_id: str) -> None:
    current = await act(profile.get)
    if current is FAILED:
        return
    face = ui.row().classes('items-center gap-4')

    def show(person: dict) -> None:
        face.clear()
        with face:
            avatar(person['name'], person['initials'], person['color'], person['avatar_url'], size='64px') \
                .mark('settings-avatar')
            ui.button('Use initials', on_click=use_initials).props('flat no-caps') \
                .set_visibility(bool(person['avatar_url']))

    async def saved(user: object) -> None:
        if user is not FAILED:
            show(await act(profile.get))

    async def uploaded(event: events.UploadEventArguments) -> None:
        upload.reset()
        if event.file.size() > profile.MAX_AVATAR_BYTES:  # before reading it all
            ui.notify('An avatar is at most 1 MB.', type='warning')
            return
        await saved(await act(profile.set_avatar, await event.file.read(), success='Avatar saved'))

    async def use_initials() -> None:
        await saved(await act(profile.clear_avatar, success='Avatar removed: your initials again'))

    show(current)
    # Quasar's uploader has an unnamed icon button and an unlabelled file input: it stays hidden, and a named button
    # opens its file picker
    upload = ui.upload(auto_upload=True, max_file_size=profile.MAX_AVATAR_BYTES, on_upload=uploaded,
                       on_rejected=lambda: ui.notify('An avatar is a PNG, JPEG or WebP image of at most 1 MB.',
                                                     type='warning')) \
        .props('accept="image/png,image/jpeg,image/webp"').classes('hidden').mark('avatar-upload')
    with ui.row().classes('items-center gap-3'):
        ui.button('Upload an image', icon='upload', on_click=lambda: upload.run_method('pickFiles')) \
            .props('outline no-caps color=teal-8').mark('avatar-pick')
        ui.label('PNG, JPEG or WebP, at most 1 MB').classes('text-xs text-slate-600')
    name = ui.input('Display name', value=current['name']).props('outlined maxlength=80').classes('w-96') \
        .mark('display-name')
    ui.button('Save name', on_click=lambda: act(profile.set_name, name.value, success='Name saved')) \
        .props('unelevated color=teal-8 no-caps').mark('save-name')
    ui.input('Email', value=current['email']).props('outlined readonly').classes('w-96')
    ui.input('Role', value=current['role']).props('outlined readonly').classes('w-96') \
        .tooltip('An admin changes roles on the Admin page.')


SECTION = Section(group='Profile', key='general', label='General', build=build)

"""Writes the chime sounds in components/sounds/ (small 16 kHz mono WAV files, made from sine tones).

    python3 scripts/make_sounds.py
"""
import math
import struct
import wave
from pathlib import Path

RATE = 16000
SOUNDS = {  # name: [(frequency Hz, seconds), ...]
    'gentle-chime': [(880, 0.18), (1318.5, 0.42)],
    'bell': [(1046.5, 0.6)],
    'coin': [(987.8, 0.08), (1318.5, 0.32)],
    'success': [(523.3, 0.12), (659.3, 0.12), (784.0, 0.3)],
}


def tone(frequency: float, seconds: float) -> list[int]:
    count = int(RATE * seconds)
    return [int(12000 * math.exp(-4 * i / count) * math.sin(2 * math.pi * frequency * i / RATE)) for i in range(count)]


def main() -> None:
    folder = Path(__file__).resolve().parent.parent / 'components' / 'sounds'
    folder.mkdir(exist_ok=True)
    for name, notes in SOUNDS.items():
        samples = [s for frequency, seconds in notes for s in tone(frequency, seconds)]
        with wave.open(str(folder / f'{name}.wav'), 'wb') as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(RATE)
            out.writeframes(struct.pack(f'<{len(samples)}h', *samples))


if __name__ == '__main__':
    main()

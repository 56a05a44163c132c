"""Everyday English words that are none of the ten keywords: synthetic ``_unknown_`` speech.

Words that sound like a keyword (``know``, ``write``, ``of``, ``too``...) are left out: they
would teach the model to reject its own keywords. Words that contain a keyword (``going``,
``stopped``, ``upper``) stay in: a keyword detector must not fire on them.
"""

from __future__ import annotations

NON_KEYWORDS: tuple[str, ...] = tuple("""
about above across after again against air all almost alone along already also always
am among and animal another answer any anything apple are area around ask away baby back
bad bag ball bank be because bed been before began begin behind being below best better
between big bird black blue boat body book both box boy bread bring brother brown build
but buy call came can car care carry cat chair change child children city class clean
clear close cold color come coming could country course cup cut dark day dear deep did
different dinner do doctor does dog done door double dream drink drive during each early
earth easy eat egg eight else end enough even evening ever every eye face fall family far
farm fast father feel few field find fine finger fire first fish five floor flower fly
follow food foot for forward found four friend from front full game garden gave girl give
glass going good got great green ground group grow had half hand happy hard has have he
head hear heart heavy hello help her here high hill him his hold home horse hot house how
hundred idea if important in inside into is it just keep kind king kitchen knew land large
last late laugh learn leave less let letter life light like line little live long look
lost lot love low made make man many marvin may me mean men might milk mind minute money
month moon more morning most mother mountain move much music must my name near need never
new next nice night nine nothing now number ocean old once one only open or orange other
our out outside over page paper park part party people perhaps person picture piece place
plant play please point poor possible pretty problem pull push put question quick quiet
rain ran read ready real really red remember rest river road rock room round run said same
sat saw say school sea second see seem seven shall she sheila ship short should show side
simple sing sister sit six sky sleep slow small snow so some something sometimes song soon
sound south speak spring stand star start station stay still stopped story street strong
study such summer sun sure table take talk tall teacher tell ten than thank that the their
them then there these they thing think this those though thought three through time today
together told tomorrow took top town tree true try turn twelve twenty under until upper
us use very visual voice wait walk wall want warm was watch water way we week well went
were what wheel when where which while white who why wide will wind window winter wish
with without woman wonder wood word work world would wow year yellow yesterday young your
zero
""".split())

"""The labelled retrieval set: 22 documents of five facts each, and a paraphrased question per fact.

Each entry is (paragraph, question). The paragraph is the passage that answers the question; the
question avoids its distinctive words where it can, as a person asking from memory would.
``OFF_TOPIC`` questions are answered by no document: they calibrate the score threshold.
"""

from __future__ import annotations

Fact = tuple[str, str]

DOCUMENTS: dict[str, tuple[str, list[Fact]]] = {
    "tram-study": (
        "Light rail feasibility study",
        [
            (
                "Building the proposed tram line would cost about 31 million euros per kilometre, "
                "including utilities diversion and depot works.",
                "How expensive is each km of the new light rail?",
            ),
            (
                "Trams carry up to 250 passengers per vehicle, roughly three times a standard "
                "articulated bus.",
                "What capacity does one tram vehicle have compared with a bus?",
            ),
            (
                "Rails and overhead wires are expected to last forty years before major renewal.",
                "For how long will the track infrastructure serve before it must be rebuilt?",
            ),
            (
                "Construction would close Market Street to cars for eighteen months.",
                "Which road gets shut during the works, and for how long?",
            ),
            (
                "Ridership modelling predicts 42,000 boardings on an average weekday by 2035.",
                "How many daily trips are forecast for the line?",
            ),
        ],
    ),
    "bus-depot": (
        "Electric bus depot plan",
        [
            (
                "The depot needs 60 chargers of 150 kW each to recharge the fleet overnight.",
                "How many charging points must the garage install?",
            ),
            (
                "A battery bus costs 520,000 euros, against 280,000 for a diesel one.",
                "What is the price gap between electric and diesel coaches?",
            ),
            (
                "Batteries are guaranteed for eight years or 400,000 kilometres.",
                "What warranty covers the battery packs?",
            ),
            (
                "The grid connection requires a new 10 MW substation from the utility.",
                "What upgrade does the power network need?",
            ),
            (
                "Winter heating cuts the electric buses' range by roughly a quarter.",
                "How much distance do the vehicles lose in cold weather?",
            ),
        ],
    ),
    "sugar-tax": (
        "Sugary drinks levy briefing",
        [
            (
                "The levy adds 24 cents per litre to drinks with over 8 grams of sugar per 100 ml.",
                "How much is charged on sweetened beverages?",
            ),
            (
                "After the tax, manufacturers reformulated half of their products to fall below "
                "the threshold.",
                "Did producers change their recipes in response?",
            ),
            (
                "Revenue of 12 million a year is earmarked for school sports facilities.",
                "Where does the money raised go?",
            ),
            (
                "Purchases of taxed drinks fell by 11 percent in the first year.",
                "By how much did sales of the affected beverages drop?",
            ),
            (
                "Critics argue the levy is regressive because low-income households pay a larger "
                "share of their income.",
                "Why do opponents say it hurts poorer families more?",
            ),
        ],
    ),
    "library-hours": (
        "Public library service review",
        [
            (
                "The central library opens from 8 am to 10 pm on weekdays since the 2024 review.",
                "What are the weekday opening times of the main branch?",
            ),
            (
                "Loans of e-books grew by 60 percent while paper loans fell by 9 percent.",
                "How has digital borrowing changed compared with printed books?",
            ),
            (
                "Late fees were abolished, and returns of overdue items rose afterwards.",
                "What happened after fines for overdue books were dropped?",
            ),
            (
                "Three neighbourhood branches share one mobile van that visits villages weekly.",
                "How are rural areas served by the library?",
            ),
            (
                "The maker space lends 3D printers and sewing machines to members.",
                "Can members borrow equipment such as printers for objects?",
            ),
        ],
    ),
    "water-leaks": (
        "Water network leakage report",
        [
            (
                "The network loses 23 percent of treated water through leaks before it reaches "
                "customers.",
                "What share of clean water never arrives at homes?",
            ),
            (
                "Acoustic loggers on pipes locate leaks by listening for the "
                "hiss of escaping water.",
                "How are hidden pipe breaks detected?",
            ),
            (
                "Most of the cast-iron mains were laid before 1950 and fail most often in frost.",
                "Which pipes break the most, and when?",
            ),
            (
                "Replacing one kilometre of main costs around 900,000 euros.",
                "What does renewing a km of water pipe cost?",
            ),
            (
                "Pressure management at night reduced bursts by 30 percent in the pilot district.",
                "Did lowering pressure overnight help?",
            ),
        ],
    ),
    "school-meals": (
        "Free school meals evaluation",
        [
            (
                "Universal free lunches cost the council 2.40 euros per pupil per day.",
                "How much does each child's lunch cost the city?",
            ),
            (
                "Attendance rose by two percentage points in schools offering free lunches.",
                "Did pupils come to school more often?",
            ),
            (
                "Kitchens source 40 percent of ingredients from farms within 100 kilometres.",
                "How much of the food is local?",
            ),
            (
                "Food waste was cut by a third after pupils chose portion sizes themselves.",
                "What reduced leftovers on plates?",
            ),
            (
                "Teachers reported calmer afternoon lessons after the programme started.",
                "What did staff notice about pupils' behaviour after lunch?",
            ),
        ],
    ),
    "bike-lanes": (
        "Protected cycle lane programme",
        [
            (
                "The city built 48 kilometres of kerb-separated cycle lanes between 2021 and 2024.",
                "How much segregated bike infrastructure was added?",
            ),
            (
                "Cycling trips doubled on corridors with protected lanes.",
                "What happened to bike use where barriers were installed?",
            ),
            (
                "Shopkeepers feared lost trade, but card spending on Elm Road rose 4 percent.",
                "Did businesses lose money when parking made way for bicycles?",
            ),
            (
                "Cyclist injuries fell by 35 percent on the rebuilt streets.",
                "Are riders safer on the redesigned roads?",
            ),
            (
                "Snow clearing of the lanes is done by small tractors before 7 am.",
                "Who keeps the paths usable in winter, and when?",
            ),
        ],
    ),
    "heat-plan": (
        "Urban heat action plan",
        [
            (
                "Street trees lower surface temperatures by up to 12 degrees on sunny afternoons.",
                "How much cooler are pavements under tree canopy?",
            ),
            (
                "Cooling centres in libraries open when the forecast exceeds 32 degrees.",
                "When do the public refuges against heatwaves open?",
            ),
            (
                "White roofs on 200 council buildings reflect sunlight and cut indoor heat.",
                "What was done to public building rooftops?",
            ),
            (
                "Heat deaths concentrate among people over 75 living alone.",
                "Who is most at risk of dying in a heatwave?",
            ),
            (
                "Drinking fountains will be installed every 500 metres in the centre.",
                "How often will there be free water taps in town?",
            ),
        ],
    ),
    "housing-permits": (
        "Housing permit reform",
        [
            (
                "Approval time for a building permit fell from 14 months to 5 months.",
                "How long does planning consent take now?",
            ),
            (
                "Parking minimums were removed for homes within 800 metres of a station.",
                "Do new flats near rail stops still need car spaces?",
            ),
            (
                "Twenty percent of units in large projects must be sold below market price.",
                "What share of new homes has to be affordable?",
            ),
            (
                "Basement flats may now be rented if they have a window and a second exit.",
                "Under what conditions can cellar apartments be let?",
            ),
            (
                "Completions rose to 3,100 homes in 2024, the highest in two decades.",
                "How many dwellings were finished last year?",
            ),
        ],
    ),
    "noise-map": (
        "Environmental noise map",
        [
            (
                "About 61,000 residents live with road noise above 55 decibels at night.",
                "How many people are exposed to loud traffic while sleeping?",
            ),
            (
                "Low-noise asphalt reduces tyre noise by 3 to 5 decibels.",
                "How much quieter is special road surfacing?",
            ),
            (
                "The airport's night curfew runs from 11 pm to 6 am.",
                "During what hours are flights banned?",
            ),
            (
                "Lowering the speed limit from 50 to 30 km/h cut noise by about 2 decibels.",
                "Does driving slower make streets quieter?",
            ),
            (
                "Noise barriers along the ring road are 4 metres high.",
                "What height are the walls beside the orbital highway?",
            ),
        ],
    ),
    "recycling": (
        "Waste and recycling strategy",
        [
            (
                "Households recycle 46 percent of their waste; the target is 65 percent by 2035.",
                "What is the current recycling rate and the goal?",
            ),
            (
                "Food waste bins collected weekly feed an anaerobic digester that makes biogas.",
                "What becomes of kitchen scraps?",
            ),
            (
                "Pay-as-you-throw charging in the pilot cut residual waste by 20 percent.",
                "Did charging by bin weight reduce rubbish?",
            ),
            (
                "Glass is collected at 300 bottle banks rather than at the door.",
                "How do residents get rid of empty jars and bottles?",
            ),
            (
                "Contamination of recycling bins by plastic bags costs 1.5 million a year.",
                "What does putting the wrong items in the recycling cost?",
            ),
        ],
    ),
    "parks-survey": (
        "Parks satisfaction survey",
        [
            (
                "Eighty-two percent of respondents visit a park at least once a week.",
                "How often do people go to green spaces?",
            ),
            (
                "Dog owners asked for more fenced areas where dogs may run off the lead.",
                "What did people with pets request?",
            ),
            (
                "Toilets were the most requested improvement, named by 47 percent.",
                "Which facility did visitors want most?",
            ),
            (
                "Evening lighting on main paths made women feel safer after dark.",
                "How did lamps on walkways affect feelings of safety?",
            ),
            (
                "Volunteers planted 15,000 bulbs in Riverside Park last autumn.",
                "How many flowers were put in by helpers?",
            ),
        ],
    ),
    "air-quality": (
        "Air quality annual report",
        [
            (
                "Nitrogen dioxide fell to 31 micrograms per cubic metre, "
                "below the legal limit of 40.",
                "Is NO2 pollution now within the allowed level?",
            ),
            (
                "Wood stoves produce a quarter of fine particle emissions in winter.",
                "How much of the soot pollution comes from home fireplaces?",
            ),
            (
                "The low emission zone charges older diesel vans 12 euros a day.",
                "What do polluting delivery vehicles pay to enter?",
            ),
            (
                "Sensors outside 40 schools report pollution every fifteen minutes.",
                "Where are the monitors placed and how frequently do they measure?",
            ),
            (
                "Asthma admissions of children dropped by 9 percent after the zone started.",
                "Did hospital visits for breathing problems in kids decline?",
            ),
        ],
    ),
    "flood-defence": (
        "River flood defence scheme",
        [
            (
                "The new embankment protects 4,200 homes against a 1-in-200-year flood.",
                "How many houses does the levee shield, and from what size of event?",
            ),
            (
                "Upstream wetlands store 1.2 million cubic metres of water during storms.",
                "How much floodwater can the marshes hold?",
            ),
            (
                "Demountable barriers can be bolted onto the quay in four hours.",
                "How quickly can the removable walls be put up?",
            ),
            (
                "Insurance premiums in the protected zone are expected to fall by 30 percent.",
                "Will home cover get cheaper behind the defences?",
            ),
            (
                "Sirens and text alerts give residents at least six hours of warning.",
                "How much notice do people get before flooding?",
            ),
        ],
    ),
    "museum-tickets": (
        "Museum pricing review",
        [
            (
                "Entry is free for under-18s and for everyone on the first Sunday of each month.",
                "When can adults visit without paying?",
            ),
            (
                "Adult tickets rose from 12 to 15 euros in 2024.",
                "What does a grown-up pay to get in now?",
            ),
            (
                "Visitor numbers reached 410,000, two thirds of them tourists.",
                "How many people came, and how many were from elsewhere?",
            ),
            (
                "The gift shop and café bring in 18 percent of income.",
                "How much revenue comes from retail and food?",
            ),
            (
                "A night opening on Thursdays until 9 pm draws younger audiences.",
                "Is there a late evening opening, and who does it attract?",
            ),
        ],
    ),
    "broadband": (
        "Rural broadband rollout",
        [
            (
                "Fibre reached 91 percent of premises by the end of 2024.",
                "What share of buildings now has a fibre connection?",
            ),
            (
                "The last 4 percent of farms will get satellite vouchers worth 500 euros.",
                "What do the most remote farmsteads receive instead of cable?",
            ),
            (
                "Digging trenches accounts for 70 percent of the rollout cost.",
                "What is the biggest expense in laying the network?",
            ),
            (
                "Reusing electricity poles for aerial fibre cut costs by a half in hills.",
                "How were costs lowered in upland areas?",
            ),
            (
                "Average download speed rose from 18 to 240 megabits per second.",
                "How much faster is the internet now?",
            ),
        ],
    ),
    "elder-care": (
        "Home care for older people",
        [
            (
                "Home carers make 2.1 million visits a year to 6,800 clients.",
                "How many house calls do care workers make annually?",
            ),
            (
                "Visits shorter than 15 minutes were banned after complaints about rushed care.",
                "What minimum length applies to a care visit?",
            ),
            (
                "Carer turnover reached 34 percent a year, mostly due to low pay.",
                "Why do so many care staff leave?",
            ),
            (
                "Fall sensors in 900 homes alert a call centre around the clock.",
                "What technology detects when an older person tumbles?",
            ),
            (
                "Day centres offer lunch and activities five days a week.",
                "Where can elderly people spend the day and get a meal?",
            ),
        ],
    ),
    "tourism-tax": (
        "Overnight tourist tax",
        [
            (
                "Visitors pay 3 euros per person per night in hotels and short-term rentals.",
                "How much does a guest pay per night?",
            ),
            (
                "Short-term rentals are capped at 90 nights a year per flat.",
                "How many nights may an apartment be let to holidaymakers?",
            ),
            (
                "The tax raised 21 million, spent on street cleaning and heritage repairs.",
                "What is the money from visitors used for?",
            ),
            (
                "Cruise passengers pay a flat 5 euro landing fee.",
                "Do people arriving by ship pay something too?",
            ),
            (
                "Hoteliers warned the charge would push conferences to other cities.",
                "What did hotel owners fear would happen?",
            ),
        ],
    ),
    "solar-roofs": (
        "Municipal solar roof programme",
        [
            (
                "Panels on 120 public buildings generate 14 gigawatt hours a year.",
                "How much electricity do the council's rooftop arrays produce?",
            ),
            (
                "Payback time for the installations is about seven years.",
                "How long until the panels pay for themselves?",
            ),
            (
                "Residents can join a cooperative that leases school roofs for community solar.",
                "How can citizens invest in shared solar?",
            ),
            (
                "Batteries at the swimming pool store midday power for the evening peak.",
                "Where is surplus daytime energy kept for later?",
            ),
            (
                "Listed historic buildings are excluded unless the panels "
                "are invisible from the street.",
                "Can heritage buildings get solar panels?",
            ),
        ],
    ),
    "snow-plan": (
        "Winter road service plan",
        [
            (
                "Gritters treat 620 kilometres of priority roads when frost is forecast.",
                "How much of the road network is salted before ice?",
            ),
            (
                "Salt stocks of 9,000 tonnes are kept in two domes.",
                "How much de-icing material is stored?",
            ),
            (
                "Bus routes and hospital access roads are cleared first.",
                "Which streets get plowed before others?",
            ),
            (
                "Residents can borrow grit bins for steep residential streets.",
                "Can people get salt for their own hilly road?",
            ),
            (
                "Brine spraying uses 30 percent less salt than dry spreading.",
                "Is there a way to use less salt on roads?",
            ),
        ],
    ),
    "youth-jobs": (
        "Youth employment guarantee",
        [
            (
                "Every person aged 16 to 24 gets a job, apprenticeship or training offer within "
                "four months.",
                "How fast must young people receive an offer of work or study?",
            ),
            (
                "Employers receive a wage subsidy of 40 percent for the first six months.",
                "What help do companies get for hiring a young person?",
            ),
            (
                "Youth unemployment fell from 17 to 11 percent over three years.",
                "How much did joblessness among young adults decrease?",
            ),
            (
                "Mentors from local firms meet each apprentice once a month.",
                "Who supports apprentices, and how often?",
            ),
            (
                "Drop-out was highest in catering, at 29 percent.",
                "Which sector lost the most trainees?",
            ),
        ],
    ),
    "street-lights": (
        "LED street lighting conversion",
        [
            (
                "Replacing 38,000 street lamps with LEDs cut their electricity use by 62 percent.",
                "How much energy did switching the lamps save?",
            ),
            (
                "Lights dim to half brightness between midnight and 5 am.",
                "Are the lamps turned down at night?",
            ),
            (
                "Warm-white 3000 kelvin lamps were chosen to limit harm to bats and insects.",
                "Why was a warmer light colour picked?",
            ),
            (
                "The conversion cost 19 million and pays back in nine years.",
                "What did the LED programme cost and when does it recover the money?",
            ),
            (
                "Faulty lamps report themselves over a radio network within an hour.",
                "How are broken lights found?",
            ),
        ],
    ),
}

OFF_TOPIC: list[str] = [
    "What is the capital of Australia?",
    "How do I bake sourdough bread at home?",
    "Who won the football world cup in 1998?",
    "What is the boiling point of ethanol?",
    "How many moons does Jupiter have?",
    "What is a good strategy for chess openings?",
    "How do vaccines train the immune system?",
    "Which programming language should I learn first?",
    "What causes the northern lights?",
    "How long do elephants live in the wild?",
]

KEYWORD_QUESTIONS: list[tuple[str, int, str]] = [
    ("bike-lanes", 2, "Elm Road card spending"),
    ("parks-survey", 4, "Riverside Park bulbs"),
    ("street-lights", 2, "3000 kelvin"),
    ("tram-study", 3, "Market Street closure"),
    ("bus-depot", 3, "10 MW substation"),
    ("flood-defence", 0, "1-in-200-year embankment"),
    ("recycling", 2, "pay-as-you-throw pilot"),
    ("water-leaks", 1, "acoustic loggers"),
    ("library-hours", 4, "maker space"),
    ("tourism-tax", 3, "cruise landing fee"),
    ("tourism-tax", 1, "90 nights rentals"),
    ("snow-plan", 4, "brine spraying"),
]
"""Questions as a person types a remembered name or number: what lexical search is for."""
